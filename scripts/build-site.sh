#!/usr/bin/env bash
# Builds the admin panel's browser bundles into target/site/pkg, which arch-manager serves at /pkg:
#   arch-{group}.wasm (hydrate bundle of one group of pages, see app/Cargo.toml's bundle-*
#   features) with its wasm-bindgen glue arch-{group}.js, and arch.css (style/arch.css),
#   each with a brotli (.br) and a gzip (.gz) twin that crates/site sends to browsers accepting it.
# The server itself is built separately (`cargo build --release -p server`); both read
# LEPTOS_OUTPUT_NAME=arch from .cargo/config.toml, so the names always agree.
#
# Usage: scripts/build-site.sh [--release|--debug]
#   --release (default): profile wasm-release (opt-level z, LTO), panics abort at once without
#                        a message, then wasm-opt -Oz
#   --debug:             dev profile, no wasm-opt (faster, much larger)
# Needs: Debian's rust-web-src (std source for -Z build-std), wasm-bindgen-cli equal to the
# wasm-bindgen version in Cargo.lock, npm binaryen in end2end/node_modules, brotli
# (scripts/setup.sh). Sizes per step: docs/performance.md, "Panel weight".
set -euo pipefail
cd "$(dirname "$0")/.."

mode=release
case "${1:-}" in
  "" | --release) mode=release ;;
  --debug) mode=debug ;;
  *) echo "usage: $0 [--release|--debug]" >&2; exit 2 ;;
esac

name=arch
front_target=target/front
site=target/site
die() { echo "build-site: $*" >&2; exit 1; }

# Tools: exact wasm-bindgen version, npm's binaryen (Debian's v108 breaks hydration).
want_wbg=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
wbg=$(command -v wasm-bindgen || true)
[ -z "$wbg" ] && [ -x "$HOME/.cargo/bin/wasm-bindgen" ] && wbg="$HOME/.cargo/bin/wasm-bindgen"
[ -n "$wbg" ] || die "wasm-bindgen not found; run scripts/setup.sh"
"$wbg" --version | grep -qF " $want_wbg" ||
  die "$("$wbg" --version) does not match wasm-bindgen $want_wbg in Cargo.lock; run scripts/setup.sh"
command -v brotli >/dev/null 2>&1 || die "brotli not found; run scripts/setup.sh (Debian package brotli)"
wasm_opt=end2end/node_modules/.bin/wasm-opt
if [ "$mode" = release ]; then
  [ -x "$wasm_opt" ] || die "$wasm_opt missing; run scripts/setup.sh (npm binaryen, not Debian's)"
fi

# The manager crate and its database must never reach the browser bundle.
if cargo tree -q -p frontend --target wasm32-unknown-unknown -i sea-orm >/dev/null 2>&1; then
  die "sea-orm is in the wasm dependency graph (cargo tree -p frontend --target wasm32-unknown-unknown -i sea-orm)"
fi

if [ "$mode" = release ]; then profile=wasm-release; else profile=dev; fi
profile_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
# One bundle per group of pages: the `bundle-{group}` features of app/Cargo.toml (the page → group
# map is `app::bundle_of`). Each build exports only its group's islands, so a page loads its own
# code and never the rest of the panel's.
bundles=$(sed -n 's/^bundle-\([a-z-]*\) = .*/\1/p' app/Cargo.toml)
[ -n "$bundles" ] || die "no bundle-* features in app/Cargo.toml"
# RUSTC_BOOTSTRAP only here: -Z build-std needs it, and it must not leak into the server build.
# Every bundle: --cfg erase_components (type-erased views). RUSTFLAGS replaces
# .cargo/config.toml's build.rustflags, so the cfg the server is built with is repeated here:
# the server and the bundle must agree, or pages fail to hydrate.
# Release flags, for this build only (the server's own flags never change, so it never rebuilds):
# -Cpanic=immediate-abort  a panic traps at once (`RuntimeError: unreachable`; --debug shows the
#                          message): no formatting or unwinding code in the bundle;
# -Zlocation-detail=none   no file names or line numbers kept for panics nobody sees.
wasm_rustflags=(--cfg erase_components)
if [ "$mode" = release ]; then
  wasm_rustflags+=(-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none)
fi

# Assemble in a fresh directory and swap it in, so a running server never sees half a bundle.
tmp="$site/pkg.new"
rm -rf "$tmp"
mkdir -p "$tmp"
wbg_flags=()
[ "$mode" = debug ] && wbg_flags+=(--debug --keep-debug)
# Compressed twins, served instead of the original to a browser that accepts them (crates/site):
# brotli at its highest quality (lower for the debug build, which is only for speed)
# and gzip -9 without a name or time stamp, so equal inputs give equal bytes.
brotli_quality=11
[ "$mode" = debug ] && brotli_quality=5
compress() {
  brotli --quality="$brotli_quality" --lgwin=24 --force --output="$1.br" "$1" &&
    gzip -9 --no-name --stdout "$1" >"$1.gz"
}
# One bundle, built in target directory $2: cargo, wasm-bindgen, wasm-opt, the compressed twins.
build_bundle() {
  local bundle=$1 dir=$2 out="$name-$1"
  echo "build-site: cargo build -p frontend --features app/bundle-$bundle (wasm32, $profile, $dir)"
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="${wasm_rustflags[*]}" \
    cargo build -q -p frontend --lib --features "app/bundle-$bundle" --target wasm32-unknown-unknown \
    -Z build-std=std,panic_abort --profile "$profile" --target-dir "$dir" || return 1
  local wasm_in="$dir/wasm32-unknown-unknown/$profile_dir/frontend.wasm"
  [ -f "$wasm_in" ] || { echo "build-site: $wasm_in was not produced" >&2; return 1; }
  # leptos names the module <name>.wasm (not <name>_bg.wasm) when LEPTOS_OUTPUT_NAME is set at
  # compile time; the hydration script passes that URL to the glue explicitly.
  "$wbg" --target web --no-typescript "${wbg_flags[@]}" --out-dir "$tmp" --out-name "$out" "$wasm_in" || return 1
  if [ "$mode" = release ]; then
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      -o "$tmp/$out.wasm" "$tmp/${out}_bg.wasm" || return 1
    rm "$tmp/${out}_bg.wasm"
  else
    mv "$tmp/${out}_bg.wasm" "$tmp/$out.wasm"
  fi
  compress "$tmp/$out.wasm" && compress "$tmp/$out.js"
}
lane() {
  local dir=$1
  shift
  for bundle in "$@"; do build_bundle "$bundle" "$dir" || return 1; done
}
# The first bundle builds the dependencies (cargo uses both cores). The others differ only in
# `app` and the final link (fat LTO, one thread), so they run in two lanes, each in its own
# target directory: the second starts as a copy of the first, dependencies already built.
set -- $bundles
build_bundle "$1" "$front_target" || die "bundle $1 failed"
shift
lane_b="$front_target-b"
[ -d "$lane_b" ] || cp -a "$front_target" "$lane_b"
first=() second=()
i=0
for bundle in "$@"; do
  if [ $((i % 2)) = 0 ]; then first+=("$bundle"); else second+=("$bundle"); fi
  i=$((i + 1))
done
lane "$front_target" "${first[@]}" &
pid_a=$!
pid_b=
if [ "${#second[@]}" -gt 0 ]; then
  lane "$lane_b" "${second[@]}" &
  pid_b=$!
fi
wait "$pid_a" || die "building the bundles ${first[*]} failed"
[ -z "$pid_b" ] || wait "$pid_b" || die "building the bundles ${second[*]} failed"
cp style/arch.css "$tmp/$name.css"
compress "$tmp/$name.css" || die "compressing $name.css failed"
rm -rf "$site/pkg.old"
[ -d "$site/pkg" ] && mv "$site/pkg" "$site/pkg.old"
mv "$tmp" "$site/pkg"
rm -rf "$site/pkg.old"

size() { wc -c <"$1" | tr -d ' '; }
for f in "$site/pkg/$name.css" $(for b in $bundles; do echo "$site/pkg/$name-$b.js $site/pkg/$name-$b.wasm"; done); do
  echo "build-site: $f $(size "$f") bytes (gzip $(size "$f.gz"), brotli $(size "$f.br"))"
done
