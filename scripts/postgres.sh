#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's postgresql package) on 127.0.0.1 with trust auth, in
# target/pg, for the service-layer tests. The port is ARCH_PG_PORT if set, else the first free one
# from 55432 up (another checkout's instance may hold 55432). Idempotent: an already running
# instance of this checkout is reused on its own port. Prints the admin URL to use as
# ARCH_TEST_DATABASE_URL; if the server does not start, prints its log and fails.
# Usage: scripts/postgres.sh [start|stop]   (no argument: start; anything else: usage, exit 2)
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/postgres.sh [start|stop]" >&2; exit 2; }
case "${1:-start}" in
  start|stop) [ $# -le 1 ] || usage ;;
  -h|--help) echo "usage: scripts/postgres.sh [start|stop]"; exit 0 ;;
  *) echo "postgres.sh: unknown subcommand '$1'" >&2; usage ;;
esac
dir=$PWD/target/pg
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "postgres.sh: PostgreSQL is not installed (run scripts/setup.sh)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      # postmaster.pid's fourth line is the port the running server listens on.
      port=$(sed -n 4p "$dir/data/postmaster.pid")
    else
      port=${ARCH_PG_PORT:-}
      if [ -z "$port" ]; then
        port=55432
        while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
          port=$((port + 1))
          [ "$port" -lt 55532 ] || { echo "postgres.sh: no free port in 55432-55531" >&2; exit 1; }
        done
      fi
      if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null; then
        echo "postgres.sh: PostgreSQL did not start on port $port; its log:" >&2
        tail -n 20 "$dir/log" >&2 || true
        exit 1
      fi
    fi
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    ;;
esac
