#!/usr/bin/env bash
# Runs the Pusher suite (run.mjs) against mod_wsbridge itself: two private
# Apaches (4 and 2 event children) on free loopback ports, one Pusher app,
# sharing a private redis-server as their bus, so the suite's cross-server
# tests run too. Stops everything it started, also on failure or signal.
# Last line: run.mjs's "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
base=$(mktemp -d "$root/build/pusher-suite.XXXXXX")
chmod 755 "$base"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port); port_a=$(free_port); port_b=$(free_port)
redis_pid=""
cleanup() {
  QUIET=1 "$root/scripts/instance.sh" stop "$base/a" >/dev/null 2>&1
  QUIET=1 "$root/scripts/instance.sh" stop "$base/b" >/dev/null 2>&1
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$base" \
  --daemonize no >/dev/null 2>&1 &
redis_pid=$!
for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# One app for both servers: the same pusher.env in both instance folders.
mkdir -p "$base/a" "$base/b"
printf 'PUSHER_APP_ID=%s\nPUSHER_APP_KEY=%s\nPUSHER_APP_SECRET=%s\n' 424242 "$(openssl rand -hex 10)" \
  "$(openssl rand -hex 16)" > "$base/a/pusher.env"
cp "$base/a/pusher.env" "$base/b/pusher.env"
echo "WSBridgeBus redis://127.0.0.1:$redis_port" > "$base/bus.conf"
start() {  # dir port children
  PORT=$2 CHILDREN=$3 QUIET=1 EXTRA_CONF="$base/bus.conf" "$root/scripts/instance.sh" start "$1" || {
    echo "could not start Apache in $1"; echo "0 passed, 1 failed"; exit 1; }
}
start "$base/a" "$port_a" 4
start "$base/b" "$port_b" 2
set -a
# shellcheck disable=SC1091
. "$base/a/pusher.env"
set +a
PUSHER_HOST=127.0.0.1 PUSHER_PORT=$port_a PUSHER_PORT_B=$port_b timeout 300 node "$here/run.mjs"
