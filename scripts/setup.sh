#!/usr/bin/env bash
# Installs everything Arch needs to build, run and test on Debian 12, idempotently:
# Debian's Rust 1.96 (rustc-web, with the std source for the wasm build), lld, brotli (the panel
# bundle's precompressed files), shadowsocks-libev
# (ss-local / ss-tunnel test peers), Chromium and PostgreSQL (tests), wasm-bindgen-cli matching
# Cargo.lock, shadowsocks-rust (sslocal / ssserver test peers) and the npm packages in end2end/.
# Usage: scripts/setup.sh [--runtime]   (--runtime skips test-only tools)
set -euo pipefail
cd "$(dirname "$0")/.."
runtime_only=false
[ "${1:-}" = "--runtime" ] && runtime_only=true

export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

apt_pkgs=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 rustfmt-web rust-web-clippy
  gcc g++ make pkg-config curl ca-certificates tzdata brotli)
$runtime_only || apt_pkgs+=(shadowsocks-libev chromium postgresql)
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's toolchain everywhere (see rust-toolchain.toml); RUSTC pins it even without rustup.
export RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo
cargo_install() { # name version binary [extra args...]
  local name=$1 version=$2 bin=$3; shift 3
  if command -v "$bin" >/dev/null 2>&1 && "$bin" --version 2>/dev/null | grep -q "$version"; then
    return
  fi
  echo "setup: cargo install $name $version"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    /usr/bin/cargo install -q "$name" --version "=$version" "$@"
}
wbg=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
cargo_install wasm-bindgen-cli "$wbg" wasm-bindgen
if ! $runtime_only; then
  cargo_install shadowsocks-rust 1.25.0 sslocal --locked --no-default-features \
    --features "logging local server multi-threaded aead-cipher aead-cipher-2022 local-tunnel"
fi

# wasm-opt (binaryen 132) and, for tests, Playwright: npm packages pinned in end2end/package-lock.json.
if [ ! -x end2end/node_modules/.bin/wasm-opt ] || ! cmp -s end2end/package-lock.json end2end/node_modules/.package-lock.stamp; then
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.package-lock.stamp)
fi
echo "setup: ok"
