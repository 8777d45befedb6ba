#!/usr/bin/env bash
# Data-plane benchmark: arch-node vs ssserver throughput/CPU, and handshake latency vs user count.
# Needs curl, and sslocal + ssserver (shadowsocks-rust, installed by scripts/setup.sh).
# arch-node is built with the `dist` profile (fat LTO, one codegen unit: how ssserver's release
# profile builds it, and how to build Arch for deployment).
# Everything runs on 127.0.0.1. Results go to stdout as markdown tables (see docs/performance.md).
# Usage: scripts/bench.sh [--runs N] [--gib G] [--conns N] [--pin] [--skip-throughput] [--skip-handshake]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH" RUSTC=/usr/bin/rustc
cargo build --profile dist -p node --bin arch-node
cargo build --profile dist -p engine --example bench
exec target/dist/examples/bench "$@"
