#!/usr/bin/env bash
# Builds the admin panel's browser bundle into target/site/pkg, which arch-manager serves at /pkg:
#   arch.js (wasm-bindgen glue), arch.wasm (hydrate bundle), arch.css (style/arch.css).
# The server itself is built separately (`cargo build --release -p server`); both read
# LEPTOS_OUTPUT_NAME=arch from .cargo/config.toml, so the names always agree.
#
# Usage: scripts/build-site.sh [--release|--debug]
#   --release (default): profile wasm-release (opt-level z, LTO) + wasm-opt -Oz
#   --debug:             dev profile, no wasm-opt (faster, much larger)
# Needs: Debian's rust-web-src (std source for -Z build-std), wasm-bindgen-cli equal to the
# wasm-bindgen version in Cargo.lock, npm binaryen in end2end/node_modules (scripts/setup.sh).
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
RUSTC_BOOTSTRAP=1 cargo build -p frontend --lib --target wasm32-unknown-unknown \
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
rm -rf "$site/pkg.old"
[ -d "$site/pkg" ] && mv "$site/pkg" "$site/pkg.old"
mv "$tmp" "$site/pkg"
rm -rf "$site/pkg.old"

size() { wc -c <"$1" | tr -d ' '; }
echo "build-site: $site/pkg/$name.wasm $(size "$site/pkg/$name.wasm") bytes," \
  "$name.js $(size "$site/pkg/$name.js") bytes, $name.css $(size "$site/pkg/$name.css") bytes"
