#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts arch-manager (SQLite in
# ./data/manager) with one local arch-node (./data/node) registered to it. On first start the
# manager prints the one-time setup URL for the first administrator; open it in a browser.
# Ctrl-C stops both gracefully (counters flushed). Environment:
#   ARCH_LISTEN (default 127.0.0.1:8080)   panel + REST API
#   ARCH_RUN_NODE_PORT (default 8081)      node API
#   ARCH_RUN_DIR (default ./data)          state of both processes
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH" RUSTC=/usr/bin/rustc

scripts/setup.sh --runtime
cargo build --release -p server -p node
scripts/build-site.sh

listen=${ARCH_LISTEN:-127.0.0.1:8080}
node_port=${ARCH_RUN_NODE_PORT:-8081}
data=${ARCH_RUN_DIR:-data}
mkdir -p "$data/node" "$data/manager"
if [ ! -s "$data/admin-token" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$data/admin-token")
fi
admin_token=$(cat "$data/admin-token")

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

target/release/arch-node serve --listen "127.0.0.1:$node_port" --data-dir "$data/node" &
pids+=($!)
target/release/arch-manager serve --listen "$listen" --data-dir "$data/manager" \
  --admin-token-file "$data/admin-token" --site-root target/site &
pids+=($!)

base="http://$listen"
for _ in $(seq 1 100); do
  curl -sf "$base/healthz" >/dev/null && [ -s "$data/node/token" ] && break
  sleep 0.2
done
api() { curl -sf -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' "$@"; }
if [ "$(api "$base/v1/nodes")" = "[]" ]; then
  api -X POST "$base/v1/nodes" \
    -d "{\"host\":\"127.0.0.1\",\"http_port\":$node_port,\"http_token\":\"$(head -n1 "$data/node/token")\"}" >/dev/null
  api -X PUT "$base/v1/settings" \
    -d '{"host":"127.0.0.1","ss_direct_port":8001,"ss_relay_port":8002,"ss_reverse_port":8003,"ss_remote_port":8004}' >/dev/null
  echo "run: registered the local node (127.0.0.1:$node_port) and enabled the four modes on ports 8001-8004"
fi
echo "run: panel at $base  (REST API token in $data/admin-token; Ctrl-C stops)"
wait
