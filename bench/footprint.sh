#!/usr/bin/env bash
# Where the memory of N idle WebSockets goes (docs/benchmark.md, "S3 after
# issue 12"): starts a private capacity instance, snapshots every Apache
# process's /proc/PID/smaps idle and again while N connections are held,
# and prints the difference per kind of mapping (bench/smaps_breakdown.py)
# and the kernel's slab growth, per connection.
#
#   bench/footprint.sh echo|chat [N]       (10000)
#
# Environment: MODULE (build/mod_wsbridge.so), CHILDREN (one per CPU),
# THREADS (the child's share of N + 10% + RESERVE), RESERVE (32), STACK
# (131072), EXTRA="directive;directive" (ListenCoresBucketsRatio 1;
# ExtendedStatus Off), PORT (18680), HOLD (20 s), SNAP (seconds after the
# start of the run at which the held snapshot is taken: 15; raise it when
# the chat room takes longer to settle), TLS=1 (the connections over wss://,
# mod_ssl with bench_tls_cert's certificate).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$root" && mkdir -p "${BUILD:-build}" && cd "${BUILD:-build}" && pwd)
app=${1:?usage: footprint.sh echo|chat [N]}
n=${2:-10000}
case $app in echo|chat) ;; *) echo "app must be echo or chat" >&2; exit 2 ;; esac
# shellcheck source=lib.sh
. "$root/bench/lib.sh"
bench_build_loadgen
children=${CHILDREN:-$(nproc)}
reserve=${RESERVE:-32}
threads=${THREADS:-$(( (n * 11 / 10 + children - 1) / children + reserve ))}
dir=$BUILD/bench/footprint
port=$(bench_free_port "${PORT:-18680}")
mkdir -p "$dir"
{ echo "ThreadStackSize ${STACK:-131072}"; echo "WSBridgeReserveWorkers $reserve"
  echo "${EXTRA:-ListenCoresBucketsRatio 1;ExtendedStatus Off}" | tr ';' '\n'; } > "$dir/extra.conf"
trap '"$root/scripts/instance.sh" stop "$dir" >/dev/null 2>&1 || true' EXIT
url=ws://127.0.0.1:$port/ws/$app tls_port=""
if [ "${TLS:-0}" = 1 ]; then
  tls_port=$(bench_free_port $((port + 1)))
  bench_tls_cert "$BUILD/bench/tls"
  cp "$BUILD/bench/tls/server.crt" "$BUILD/bench/tls/server.key" "$dir/"
  url=wss://127.0.0.1:$tls_port/ws/$app
fi
SSL_PORT=$tls_port PORT=$port MPM=event CHILDREN=$children THREADS=$threads MAXWORKERS=$((children * threads)) \
  EXTRA_CONF="$dir/extra.conf" MODULE="${MODULE:-$BUILD/mod_wsbridge.so}" QUIET=1 \
  "$root/scripts/instance.sh" start "$dir"
bench_wait_children "$dir/httpd.pid" "$children"
sleep 3  # every thread started: the idle snapshot
slab() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
s0=$(slab)
python3 "$root/bench/smaps_breakdown.py" snap "$dir/httpd.pid" "$dir/idle.json" >/dev/null
join=(); [ "$app" = chat ] && join=(--proto chat --join --room bench)
timeout -k 5 300 "$LOADGEN" connect --url "$url" --clients "$n" --hold "${HOLD:-20}" \
  --concurrency 200 --pid-file "$dir/httpd.pid" "${join[@]}" > "$dir/loadgen.out" 2>&1 &
lg=$!
sleep "${SNAP:-15}"
python3 "$root/bench/smaps_breakdown.py" snap "$dir/httpd.pid" "$dir/held.json" >/dev/null
s1=$(slab)
wait "$lg" || true
echo "$app, $n connections, $children children x $threads threads: $(grep -v '^{' "$dir/loadgen.out" | head -1)"
held=$(grep '^{' "$dir/loadgen.out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("held", 0))' 2>/dev/null || echo 0)
[ "$held" -gt 0 ] || { echo "no connection held" >&2; exit 1; }
python3 "$root/bench/smaps_breakdown.py" diff "$dir/idle.json" "$dir/held.json" "$held"
echo "kernel slab (not in RSS; the load generator's sockets included): $(( (s1 - s0) / held )) KiB per connection"
