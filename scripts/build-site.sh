#!/usr/bin/env bash
# Builds the admin panel's browser bundle into target/site/pkg, which arch-manager serves at /pkg:
#   arch.js (wasm-bindgen glue), arch.wasm (hydrate bundle), arch.css (style/arch.css),
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
echo "build-site: cargo build -p frontend (wasm32, $profile)"
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
RUSTC_BOOTSTRAP=1 RUSTFLAGS="${wasm_rustflags[*]}" \
  cargo build -p frontend --lib --target wasm32-unknown-unknown \
  -Z build-std=std,panic_abort --profile "$profile" --target-dir "$front_target"
wasm_in="$front_target/wasm32-unknown-unknown/$profile_dir/frontend.wasm"
[ -f "$wasm_in" ] || die "$wasm_in was not produced"

# Assemble in a fresh directory and swap it in, so a running server never sees half a bundle.
tmp="$site/pkg.new"
rm -rf "$tmp"
mkdir -p "$tmp"
wbg_flags=()
[ "$mode" = debug ] && wbg_flags+=(--debug --keep-debug)
"$wbg" --target web --no-typescript "${wbg_flags[@]}" --out-dir "$tmp" --out-name "$name" "$wasm_in"
# leptos names the module <name>.wasm (not <name>_bg.wasm) when LEPTOS_OUTPUT_NAME is set at
# compile time; the hydration script passes that URL to the glue explicitly.
if [ "$mode" = release ]; then
  "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    -o "$tmp/$name.wasm" "$tmp/${name}_bg.wasm"
  rm "$tmp/${name}_bg.wasm"
else
  mv "$tmp/${name}_bg.wasm" "$tmp/$name.wasm"
fi
cp style/arch.css "$tmp/$name.css"
# Compressed twins, served instead of the original to a browser that accepts them (crates/site):
# brotli at its highest quality (lower for the debug build, which is only for speed)
# and gzip -9 without a name or time stamp, so equal inputs give equal bytes.
brotli_quality=11
[ "$mode" = debug ] && brotli_quality=5
for f in "$tmp/$name.js" "$tmp/$name.wasm" "$tmp/$name.css"; do
  brotli --quality="$brotli_quality" --lgwin=24 --force --output="$f.br" "$f"
  gzip -9 --no-name --stdout "$f" >"$f.gz"
done
rm -rf "$site/pkg.old"
[ -d "$site/pkg" ] && mv "$site/pkg" "$site/pkg.old"
mv "$tmp" "$site/pkg"
rm -rf "$site/pkg.old"

size() { wc -c <"$1" | tr -d ' '; }
for ext in wasm js css; do
  f="$site/pkg/$name.$ext"
  echo "build-site: $f $(size "$f") bytes (gzip $(size "$f.gz"), brotli $(size "$f.br"))"
done
