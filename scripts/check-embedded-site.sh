#!/usr/bin/env bash
# Proves that target/release/arch-manager carries its panel bundle: it runs `arch-manager serve`
# from an empty temporary directory (no target/site in reach, no --site-root, a fresh data dir,
# loopback port chosen by the kernel), fetches every bundle /pkg/arch-{group}.wasm and expects 200
# with exactly the bytes of target/site/pkg/arch-{group}.wasm. Run after scripts/build-site.sh and
# `cargo build --release -p server` (scripts/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "check-embedded-site: $*" >&2; exit 1; }

bin=$PWD/target/release/arch-manager
pkg=$PWD/target/site/pkg
[ -x "$bin" ] || die "$bin missing: cargo build --release -p server"
bundles=$(cd "$pkg" 2>/dev/null && ls arch-*.wasm 2>/dev/null || true)
[ -n "$bundles" ] || die "no $pkg/arch-*.wasm: scripts/build-site.sh"

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The manager runs at most 60 s whatever happens; it prints its address once bound.
(cd "$tmp" && exec env -u ARCH_SITE_ROOT -u ARCH_DATABASE_URL -u ARCH_DATA_DIR -u ARCH_LISTEN \
  timeout 60 "$bin" serve --listen 127.0.0.1:0 --data-dir "$tmp/data") >"$tmp/out" 2>"$tmp/err" &
pid=$!
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's#^arch-manager listening on http://\(127\.0\.0\.1:[0-9]*\)$#\1#p' "$tmp/out")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$tmp/err" >&2; die "arch-manager did not start within 30 s"; }

for name in $bundles; do
  code=$(curl -sS --max-time 10 -o "$tmp/$name" -w '%{http_code}' "http://$addr/pkg/$name")
  got_bytes=$(wc -c <"$tmp/$name" | tr -d ' ')
  want_bytes=$(wc -c <"$pkg/$name" | tr -d ' ')
  [ "$code" = 200 ] || die "GET /pkg/$name from $tmp answered $code, expected 200"
  [ "$got_bytes" = "$want_bytes" ] ||
    die "GET /pkg/$name gave $got_bytes bytes, target/site/pkg/$name has $want_bytes"
  cmp -s "$tmp/$name" "$pkg/$name" || die "GET /pkg/$name differs from target/site/pkg/$name"
  echo "check-embedded-site: arch-manager run from $tmp served /pkg/$name: 200, $got_bytes bytes (built in)"
done
