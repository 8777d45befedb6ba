#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts arch-manager (SQLite in
# ./data/manager) with one local arch-node (./data/node) registered to it. The node API is HTTPS
# with the certificate the node generates in ./data/node; the manager pins its fingerprint. On
# first start the manager prints the one-time setup URL for the first administrator; open it in
# a browser.
# Ctrl-C stops both gracefully (counters flushed). If either process does not come up or dies,
# the script says which, shows the last lines of its log, stops the other and exits 1.
# Environment:
#   ARCH_LISTEN (default 127.0.0.1:8080)   panel + REST API
#   ARCH_RUN_NODE_PORT (default 8081)      node API
#   ARCH_RUN_DIR (default ./data)          state of both processes
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH" RUSTC=/usr/bin/rustc

scripts/setup.sh --runtime
# The bundle first: the manager binary embeds target/site/pkg when it is compiled.
scripts/build-site.sh
cargo build --release -p server -p node

listen=${ARCH_LISTEN:-127.0.0.1:8080}
node_port=${ARCH_RUN_NODE_PORT:-8081}
data=${ARCH_RUN_DIR:-data}
mkdir -p "$data/node" "$data/manager"
if [ ! -s "$data/admin-token" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$data/admin-token")
fi
admin_token=$(cat "$data/admin-token")
# The local node's token: arch-node keeps only a hash of its token, so this script makes one
# itself (once) and hands the node the file. A data dir of an earlier version keeps the token
# the manager already has (the node then deletes its own plain copy).
if [ ! -s "$data/node-token" ]; then
  if [ -s "$data/node/token" ]; then
    (umask 077 && head -n1 "$data/node/token" > "$data/node-token")
  else
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$data/node-token")
  fi
fi

# Each process's output goes to the terminal (the manager prints the one-time setup URL there)
# and to $data/logs/<name>.log, whose last lines are shown if the process dies.
mkdir -p "$data/logs"
pids=() names=() logs=()
launch() { # name command…
  local name=$1 log="$data/logs/$1.log"
  shift
  : >"$log"
  "$@" > >(tee -a "$log") 2> >(tee -a "$log" >&2) &
  pids+=($!) names+=("$name") logs+=("$log")
}
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 0' INT TERM
# Stops everything and exits 1 after showing the last lines of process $1's log.
fail() {
  echo "run: $2; last lines of ${logs[$1]}:" >&2
  tail -n 20 "${logs[$1]}" >&2
  exit 1
}
# Exits (through fail) if either process has ended.
check_alive() {
  local i rc
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      rc=0
      wait "${pids[$i]}" || rc=$?
      fail "$i" "${names[$i]} exited (status $rc)"
    fi
  done
}

launch arch-node target/release/arch-node serve --listen "127.0.0.1:$node_port" \
  --data-dir "$data/node" --token-file "$data/node-token"
launch arch-manager target/release/arch-manager serve --listen "$listen" --data-dir "$data/manager" \
  --admin-token-file "$data/admin-token" --site-root target/site

base="http://$listen"
node_up() {
  [ -s "$data/node-token" ] && timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$node_port" 2>/dev/null
}
manager_up() { curl -sf --max-time 2 "$base/healthz" >/dev/null; }
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
  check_alive
  node_up && manager_up && break
  sleep 0.2
done
check_alive
node_up || fail 0 "arch-node did not come up within 30 s (no token in $data/node-token or nothing listening on 127.0.0.1:$node_port); the local node is not registered"
manager_up || fail 1 "arch-manager did not come up within 30 s (no answer from $base/healthz); the local node is not registered"

api() { curl -sS --fail-with-body -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' "$@"; }
nodes=$(api "$base/v1/nodes") || fail 1 "arch-manager refused to list nodes (GET $base/v1/nodes: $nodes)"
if [ "$nodes" = "[]" ]; then
  # The manager pins the certificate the node wrote (arch-node prints its SHA-256); without it,
  # the manager trusts the certificate the node presents at registration (trust on first use).
  if fingerprint=$(target/release/arch-node fingerprint --data-dir "$data/node"); then
    pin=",\"tls_fingerprint\":\"$fingerprint\""
  else
    pin=""
    echo "run: could not read the node's certificate; the manager pins the one it presents (trust on first use)" >&2
  fi
  body="{\"host\":\"127.0.0.1\",\"http_port\":$node_port,\"http_token\":\"$(head -n1 "$data/node-token")\"$pin}"
  out=$(api -X POST "$base/v1/nodes" -d "$body") ||
    fail 1 "registering the local node failed (POST $base/v1/nodes: $out)"
  out=$(api -X PUT "$base/v1/settings" \
    -d '{"host":"127.0.0.1","ss_direct_port":8001,"ss_relay_port":8002,"ss_reverse_port":8003,"ss_remote_port":8004}') ||
    fail 1 "enabling the four modes failed (PUT $base/v1/settings: $out)"
  echo "run: registered the local node (https://127.0.0.1:$node_port, certificate ${fingerprint:-pinned on first use}) and enabled the four modes on ports 8001-8004"
elif [[ $nodes == *'"insecure_http":true'* ]]; then
  echo "run: a node is registered as plain HTTP by an earlier version, but the local node now serves HTTPS: delete it in the panel and run again to register it with its certificate" >&2
fi
echo "run: panel at $base  (REST API token in $data/admin-token; logs in $data/logs; Ctrl-C stops)"
while true; do
  check_alive
  sleep 1
done
