#!/usr/bin/env bash
# `make bench`: measures mod_wsbridge in private Apache instances on
# 127.0.0.1 with bench/loadgen (docs/benchmark.md has the method, the
# figures and what limits them).
#
#   S1 fan-out     100 clients in one room, 10 senders at a total 1,000 msg/s,
#                  64-byte texts: 100,000 deliveries/s expected
#   S2 saturation  100 clients, all 100 sending as fast as they can with one
#                  message in flight each
#   S3 capacity    10,000 WebSockets held idle 10 s, twice: S3-echo (echo
#                  connections) and S3-chat (chat connections that all join
#                  one room): how many, KiB each, handshakes/s, server CPU
#                  per handshake, and for the chat the time until the room
#                  settles (every member's presence in, then 1 s quiet)
#   S4 echo        1 and 100 connections, 64 B and 64 KiB messages
#   S1-tls S2-tls  S1 and S2 over wss:// (mod_ssl on the same instance)
#   S3-tls         S3 over wss:// (S3-echo-tls, S3-chat-tls): KiB per TLS
#                  connection, TLS handshakes/s and server CPU per handshake
#   The wss:// runs use one self-signed ECDSA P-256 certificate (bench/lib.sh,
#   bench_tls_cert) and OpenSSL's default TLS version and cipher; the load
#   generator prints what was negotiated (TLSv1.3 TLS_AES_256_GCM_SHA384).
#
# Each scenario runs BENCH_REPS times (3); the medians are printed and
# written with every run to build/bench/summary.json.
#
# Environment:
#   BENCH_QUICK=1        smoke run: short durations, 1 repetition, S3 with 2,000
#   BENCH_REPS=N         repetitions per scenario
#   BENCH_SCENARIOS="S1 S2 S3 S4 S1-tls S2-tls S3-tls"   which ones
#   BENCH_THREADS=N      load-generator threads (1)
#   BENCH_PORT=N         first port to try (18480)
#   BENCH_S3_CONNS=N     S3 connections (10000)
#   BENCH_S3_HOLD=S      S3 seconds held (10)
#   BENCH_S3_CHILDREN=N  S3 Apache children (one per CPU); ThreadsPerChild
#                        follows: each child's share of the connections + 10%
#                        + the reserve
#   BENCH_S3_RESERVE=N   S3 WSBridgeReserveWorkers (32)
#   BENCH_S3_STACK=B     S3 ThreadStackSize (131072)
#   BENCH_STRACE=1       after S2, one more S2 run under `strace -c -f`:
#                        syscalls per delivered message (slows the server)
#   BENCH_PERF=1         same with `perf stat` (syscalls, context switches;
#                        much lower overhead than strace)
#
# The server instances (written under build/bench/):
#   fanout   S1, S2, S4. mpm_event, 1 child x 200 threads. A WebSocket
#            holds its Apache worker thread for its whole life, so the
#            threads must outnumber the connections (100 + spare). One
#            child, because every child's hub applies every chat event:
#            a second child doubles that work on the same two cores and
#            lets the faster child's senders run ahead of the slower one. The chat
#            rate limit is raised (WSBridgeRateLimit 100000 100000): the
#            default 20 msg/s per connection would refuse S2's senders.
#   capacity S3. mpm_event, one child per CPU, ListenCoresBucketsRatio 1,
#            ThreadsPerChild = the child's share of the connections + 10% +
#            WSBridgeReserveWorkers 32 (2 x 5,532 for 10,000 on 2 CPUs),
#            ThreadStackSize 128K (the default 8M stack is only virtual, but
#            11,000 of them crowd the address space and the page tables),
#            ExtendedStatus Off (why: bench/lib.sh, docs/capacity.md). A
#            fresh instance for every run,
#            on a new port (the previous run's TIME_WAIT sockets stay
#            behind), so the RSS before/after is not flattered by stacks an
#            earlier run already touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$root" && mkdir -p "${BUILD:-build}" && cd "${BUILD:-build}" && pwd)
out=$BUILD/bench
mkdir -p "$out"
# shellcheck source=../bench/lib.sh
. "$root/bench/lib.sh"

QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=""
REPS=${BENCH_REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)}
SCENARIOS=${BENCH_SCENARIOS:-S1 S2 S3 S4 S1-tls S2-tls S3-tls}
THREADS=${BENCH_THREADS:-1}
S3_CONNS=${BENCH_S3_CONNS:-$([ -n "$QUICK" ] && echo 2000 || echo 10000)}
if [ -n "$QUICK" ]; then
  DUR=3; WARM=1; DUR4=2; HOLD=5
else
  DUR=10; WARM=2; DUR4=5; HOLD=10
fi
HOLD3=${BENCH_S3_HOLD:-$HOLD}
RESULTS=$out/results.jsonl
: > "$RESULTS"
MODULE=${MODULE:-$BUILD/mod_wsbridge.so}
[ -f "$MODULE" ] || { echo "no module at $MODULE: run make module" >&2; exit 1; }
bench_build_loadgen

trap bench_stop_all EXIT

bench_check_quiet
echo "mod_wsbridge benchmark: $(nproc) CPUs, load generator with $THREADS thread(s), $REPS repetition(s)$([ -n "$QUICK" ] && echo ', QUICK')"
echo "results: $RESULTS"

has() { case " $SCENARIOS " in *" $1 "*) return 0;; esac; return 1; }

# sample_syscalls TOOL PIDFILE URL: one more S2 run with strace or perf
# attached to every thread of the Apache children for the whole run;
# syscalls (and, perf, context switches) divided by the messages the clients
# received in that run (connects and joins add a few hundred syscalls, noise
# next to the deliveries). strace slows every syscall, so the server batches
# more under it: its figure is a lower bound; perf's is the faithful one.
sample_syscalls() {
  local tool=$1 pidfile=$2 url=$3 log=$out/s2-$1.txt tmp=$out/s2-$1.out
  local pids t; pids=$(pgrep -P "$(cat "$pidfile")" | tr '\n' ' ')
  local tids=(); for x in $pids; do for t in /proc/"$x"/task/*; do tids+=("${t##*/}"); done; done
  case $tool in
    strace) local p=(); for t in "${tids[@]}"; do p+=(-p "$t"); done
            strace -c -f "${p[@]}" -o "$log" >/dev/null 2>&1 & ;;
    perf)   perf stat -e raw_syscalls:sys_enter,context-switches,cpu-migrations \
              -p "$(echo "$pids" | tr ' ' ',' | sed 's/,$//')" -o "$log" >/dev/null 2>&1 & ;;
  esac
  local tracer=$!
  sleep 2  # attaching to a few hundred threads takes a moment
  timeout -k 5 120 "$LOADGEN" broadcast --url "$url" --clients 100 --senders 100 --window 1 --size 64 \
    --duration "$DUR" --warmup "$WARM" --threads "$THREADS" --pid-file "$pidfile" > "$tmp" 2>&1 || true
  kill -INT "$tracer" 2>/dev/null || true
  wait "$tracer" 2>/dev/null || true
  echo "  S2 under $tool: $(grep -v '^{' "$tmp" | head -1 | cut -c1-170)"
  local msgs calls cs=""
  msgs=$(grep '^{' "$tmp" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["received_total"])' 2>/dev/null || echo 0)
  if [ "$tool" = strace ]; then
    calls=$(awk '$NF=="total" {print $4}' "$log" 2>/dev/null | tail -1)
  else
    calls=$(awk '/raw_syscalls:sys_enter/ {gsub(",", "", $1); print $1}' "$log" 2>/dev/null)
    cs=$(awk '/context-switches/ {gsub(",", "", $1); print $1}' "$log" 2>/dev/null)
  fi
  if [ -z "${calls:-}" ] || [ "$msgs" = 0 ]; then echo "  $tool: no count (see $log)"; return; fi
  local per; per=$(python3 -c "print(round($calls / $msgs, 3))")
  echo "  $tool: $calls syscalls by the Apache children for $msgs delivered messages = $per per message ($log)"
  local extra=""
  if [ -n "$cs" ]; then
    local csper; csper=$(python3 -c "print(round($cs / $msgs, 3))")
    echo "  $tool: $cs context switches = $csper per delivered message"
    extra=",\"context_switches\":$cs,\"context_switches_per_msg\":$csper"
  fi
  printf '{"tool":"%s","syscalls":%s,"messages":%s,"syscalls_per_msg":%s%s}\n' \
    "$tool" "$calls" "$msgs" "$per" "$extra" >> "$out/syscalls.jsonl"
}

port=$(bench_free_port "${BENCH_PORT:-18480}")
: > "$out/syscalls.jsonl"
if has S1 || has S2 || has S4 || has S1-tls || has S2-tls; then
  dir=$out/fanout
  tls_port=""
  if has S1-tls || has S2-tls; then tls_port=$(bench_free_port $((port + 1))); fi
  bench_wsbridge_start "$dir" "$port" 1 200 "$WSBRIDGE_FANOUT_CONF" "$tls_port"
  pidfile=$dir/httpd.pid
  chat=ws://127.0.0.1:$port/ws/chat
  wss_chat=wss://127.0.0.1:$tls_port/ws/chat
  echo_url=ws://127.0.0.1:$port/ws/echo
  common=(--threads "$THREADS" --pid-file "$pidfile")
  if has S1; then
    echo "S1 fan-out: 100 clients, 10 senders, 1,000 msg/s total, 64 B, ${DUR}s"
    for r in $(seq 1 "$REPS"); do
      bench_run wsbridge S1 "$r" -- broadcast --url "$chat" --clients 100 --senders 10 --rate 1000 \
        --size 64 --duration "$DUR" --warmup "$WARM" "${common[@]}" || true
    done
  fi
  if has S2; then
    echo "S2 saturation: 100 clients, 100 senders, window 1, 64 B, ${DUR}s"
    for r in $(seq 1 "$REPS"); do
      bench_run wsbridge S2 "$r" -- broadcast --url "$chat" --clients 100 --senders 100 --window 1 \
        --size 64 --duration "$DUR" --warmup "$WARM" "${common[@]}" || true
    done
    if [ "${BENCH_STRACE:-0}" = 1 ]; then
      if command -v strace >/dev/null; then sample_syscalls strace "$pidfile" "$chat"
      else echo "  BENCH_STRACE=1: strace is not installed (apt-get install strace)"; fi
    fi
    if [ "${BENCH_PERF:-0}" = 1 ]; then
      if command -v perf >/dev/null; then sample_syscalls perf "$pidfile" "$chat"
      else echo "  BENCH_PERF=1: perf is not installed (apt-get install linux-perf)"; fi
    fi
  fi
  for sc in S1 S2; do
    has "$sc-tls" || continue
    if [ "$sc" = S1 ]; then load=(--senders 10 --rate 1000); what="10 senders, 1,000 msg/s total"
    else load=(--senders 100 --window 1); what="100 senders, window 1"; fi
    echo "$sc-tls over wss://: 100 clients, $what, 64 B, ${DUR}s"
    for r in $(seq 1 "$REPS"); do
      bench_run wsbridge "$sc-tls" "$r" -- broadcast --url "$wss_chat" --clients 100 "${load[@]}" \
        --size 64 --duration "$DUR" --warmup "$WARM" "${common[@]}" || true
    done
  done
  if has S4; then
    echo "S4 echo: 1 and 100 connections, 64 B and 64 KiB, ${DUR4}s"
    for size in 64 65536; do
      for n in 1 100; do
        name=S4-${n}x$([ "$size" = 64 ] && echo 64B || echo 64KiB)
        for r in $(seq 1 "$REPS"); do
          bench_run wsbridge "$name" "$r" -- echo --url "$echo_url" --clients "$n" --size "$size" \
            --duration "$DUR4" --warmup 1 "${common[@]}" || true
        done
      done
    done
  fi
  bench_stop "wsbridge:$dir"
  port=$(bench_free_port $(( ${tls_port:-$port} + 1)))
fi

if has S3 || has S3-tls; then
  children=$(bench_capacity_children "$S3_CONNS")
  per_child=$(bench_capacity_threads "$S3_CONNS")
  need_threads=$(( children * per_child + 2000 ))
  pid_max=$(cat /proc/sys/kernel/pid_max)
  threads_max=$(cat /proc/sys/kernel/threads-max)
  if [ "$need_threads" -gt "$pid_max" ] || [ "$need_threads" -gt "$threads_max" ]; then
    echo "S3: $children x $per_child Apache threads need more than kernel.pid_max ($pid_max) / threads-max ($threads_max) allow" >&2
  fi
  nofile=$(ulimit -Hn)
  if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((S3_CONNS + 100)) ] && [ "$(id -u)" != 0 ]; then
    echo "S3: the hard fd limit ($nofile) is below $((S3_CONNS + 100)); the load generator cannot open $S3_CONNS connections" >&2
  fi
  echo "S3 capacity: $S3_CONNS connections held ${HOLD3}s: echo, then chat (every connection joins one room);" \
       "$children children x $per_child threads, WSBridgeReserveWorkers $S3_RESERVE, ThreadStackSize $((S3_STACK / 1024))K"
  s3_runs=(); has S3 && s3_runs+=(""); has S3-tls && s3_runs+=(-tls)
  for r in $(seq 1 "$REPS"); do
    for tls in "${s3_runs[@]}"; do
      for app in echo chat; do
        dir=$out/capacity
        tls_port=""; [ -n "$tls" ] && tls_port=$(bench_free_port $((port + 1)))
        bench_wsbridge_capacity_start "$dir" "$port" "$S3_CONNS" "$tls_port"
        sleep 3  # every child has started its threads: the baseline RSS is idle
        extra=(); [ "$app" = chat ] && extra=(--proto chat --join --room bench)
        url=ws://127.0.0.1:$port/ws/$app; [ -n "$tls" ] && url=wss://127.0.0.1:$tls_port/ws/$app
        bench_run wsbridge "S3-$app$tls" "$r" -- connect --url "$url" --clients "$S3_CONNS" \
          --hold "$HOLD3" --concurrency 200 --threads "$THREADS" --pid-file "$dir/httpd.pid" "${extra[@]}" || true
        grep -E '\[(error|crit|alert|emerg)\]|AH00484' "$dir/logs/error.log" | tail -3 | sed 's/^/    apache: /' || true
        bench_stop "wsbridge:$dir"
        port=$(bench_free_port $(( ${tls_port:-$port} + 1)))
      done
    done
  done
fi

meta="{\"machine\":$(bench_machine_json),\"params\":{\"quick\":$([ -n "$QUICK" ] && echo true || echo false),\"reps\":$REPS,\"loadgen_threads\":$THREADS,\"duration\":$DUR,\"warmup\":$WARM,\"echo_duration\":$DUR4,\"s3_conns\":$S3_CONNS,\"s3_hold\":$HOLD3,\"s3_children\":$S3_CHILDREN,\"s3_reserve\":$S3_RESERVE,\"s3_stack\":$S3_STACK}}"
if [ -s "$out/syscalls.jsonl" ]; then
  meta=${meta%\}}",\"syscalls\":[$(paste -sd, "$out/syscalls.jsonl")]}"
fi
python3 "$root/bench/summarize.py" "$RESULTS" "$out/summary.json" --meta "$meta"
