#!/usr/bin/env bash
# Data-plane benchmark: engine vs ssserver throughput/CPU, and handshake latency vs user count.
# Needs curl, and sslocal + ssserver (shadowsocks-rust, installed by scripts/setup.sh).
# Everything runs on 127.0.0.1. Results go to stdout as markdown tables (see docs/performance.md).
# Usage: scripts/bench.sh [--runs N] [--gib G] [--conns N] [--skip-throughput] [--skip-handshake]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p engine --example engine-serve --example bench
exec target/release/examples/bench "$@"
