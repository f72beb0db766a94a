#!/usr/bin/env bash
# `make bench-compare`: S1-S3 of scripts/bench.sh against mod_wsbridge and
# two peers, all private instances on 127.0.0.1, and the ratio
# mod_wsbridge / peer for every figure (docs/benchmark.md).
#
#   wsbridge  the module, chat protocol (join, JSON messages), as in `make bench`
#   nchan     nginx + nchan (libnginx-mod-nchan): every client is a
#             `nchan_pubsub websocket` subscriber of one channel and publishes
#             to it by sending frames (raw protocol)
#   node      Apache (mpm_event, mod_proxy_wstunnel) in front of a Node.js `ws`
#             broadcast hub, bench/ws-hub.js (raw protocol); CPU and memory
#             are Apache's and Node's together, the stack one would deploy
#
# The peers only relay frames; the module also parses each chat command,
# stamps it (seq, ts), puts it on its shared-memory bus and encodes the JSON
# event once per message. Runs alternate between the servers (rep 1 of every
# server, then rep 2, ...) so that drift on the machine hits all of them.
#
# Installs what is missing (apt-get: nginx, libnginx-mod-nchan, nodejs, npm;
# npm: ws and bufferutil into build/bench/compare/node).
#
# S1-tls, S2-tls, S3-tls: the same over wss://, the module (mod_ssl) beside
# nginx + nchan (its ssl listener), both with one self-signed ECDSA P-256
# certificate and OpenSSL's default version and cipher (printed with every
# table: TLSv1.3 TLS_AES_256_GCM_SHA384 on Debian 12). The node peer has no
# TLS run.
#
# S3 runs the module twice (S3-echo: echo connections; S3-chat: chat
# connections that all join one room) and each peer once (its clients all
# subscribe to one channel as they connect), shown beside both.
#
# "pusher" (in BENCH_SCENARIOS by default) runs scripts/bench-pusher.sh
# last: the same S1/S2 fan-out through the Pusher endpoint (events triggered
# through the HTTP API, and by client events), beside soketi 1.6.1 and
# beside nginx + nchan fed by its HTTP publisher (docs/benchmark-pusher.md).
#
# Environment: BENCH_QUICK, BENCH_REPS, BENCH_THREADS, BENCH_PORT,
# BENCH_S3_CONNS, BENCH_S3_HOLD, BENCH_S3_CHILDREN, BENCH_S3_RESERVE,
# BENCH_S3_STACK as in scripts/bench.sh; BENCH_SCENARIOS="S1 S2 S3 S1-tls
# S2-tls S3-tls";
# BENCH_PEERS="nchan node" (add node-direct for the hub without Apache);
# NCHAN_WORKERS (1: nchan's inter-worker IPC made its latency 10x worse
# with 2 on a 2-CPU machine; see docs/benchmark.md).
# BENCH_WSBRIDGE_CONF: more configuration for the module's S1/S2 instance,
# e.g. "WSBridgeBatchWindow 1ms 1" (the curve in docs/benchmark.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$root" && mkdir -p "${BUILD:-build}" && cd "${BUILD:-build}" && pwd)
out=$BUILD/bench/compare
mkdir -p "$out"
# shellcheck source=../bench/lib.sh
. "$root/bench/lib.sh"

QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=""
REPS=${BENCH_REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)}
SCENARIOS=${BENCH_SCENARIOS:-S1 S2 S3 S1-tls S2-tls S3-tls pusher}
PEERS=${BENCH_PEERS:-nchan node}
THREADS=${BENCH_THREADS:-1}
S3_CONNS=${BENCH_S3_CONNS:-$([ -n "$QUICK" ] && echo 2000 || echo 10000)}
NCHAN_WORKERS=${NCHAN_WORKERS:-1}
if [ -n "$QUICK" ]; then DUR=3; WARM=1; HOLD=5; else DUR=10; WARM=2; HOLD=10; fi
HOLD=${BENCH_S3_HOLD:-$HOLD}
RESULTS=$out/results.jsonl
: > "$RESULTS"
MODULE=${MODULE:-$BUILD/mod_wsbridge.so}
[ -f "$MODULE" ] || { echo "no module at $MODULE: run make module" >&2; exit 1; }
has() { case " $SCENARIOS " in *" $1 "*) return 0;; esac; return 1; }
peer() { case " $PEERS " in *" $1 "*) return 0;; esac; return 1; }

# --- dependencies -------------------------------------------------------------
install_deps() {
  local pkgs=(nginx libnginx-mod-nchan nodejs npm) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # A node/npm from elsewhere (nvm, NodeSource) will do too.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    local m=(); for p in "${missing[@]}"; do case $p in nodejs|npm) ;; *) m+=("$p");; esac; done
    missing=("${m[@]+"${m[@]}"}")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "missing packages: ${missing[*]} (run as root)" >&2; exit 1; }
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local nm=$out/node
  mkdir -p "$nm"
  if [ ! -d "$nm/node_modules/ws" ]; then
    echo "npm install ws bufferutil (into $nm)"
    [ -f "$nm/package.json" ] || echo '{"name":"wsbridge-bench-peer","private":true}' > "$nm/package.json"
    (cd "$nm" && npm install --no-audit --no-fund --loglevel=error ws@8 >/dev/null)
    # Optional native masking helper ws uses when present, as deployments do.
    (cd "$nm" && npm install --no-audit --no-fund --loglevel=error bufferutil@4 >/dev/null 2>&1) || true
  fi
}

# --- peers --------------------------------------------------------------------
# Node hub, and Apache (mod_proxy_wstunnel) in front of it unless direct.
node_start() {
  local dir=$1 port=$2 hubport=$3 children=$4 threads=$5 stack=$6
  mkdir -p "$dir/logs"
  (cd "$out/node" && NODE_PATH=$out/node/node_modules exec node "$root/bench/ws-hub.js" "$hubport" > "$dir/logs/node.log" 2>&1) &
  echo $! > "$dir/node.pid"
  BENCH_INSTANCES+=("node:$dir")
  local i; for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$hubport") 2>/dev/null && break; sleep 0.1; done
  [ -z "$port" ] && return 0
  local user=""; [ "$(id -u)" = 0 ] && user=$'User www-data\nGroup www-data' && chown www-data "$dir/logs"
  local m=/usr/lib/apache2/modules
  cat > "$dir/httpd.conf" <<CONF
# Generated by scripts/bench-compare.sh: Apache in front of the Node hub.
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir"
Mutex file:$dir default
ErrorLog "$dir/logs/error.log"
LogLevel warn
$user
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_http_module $m/mod_proxy_http.so
LoadModule proxy_wstunnel_module $m/mod_proxy_wstunnel.so
StartServers $children
ServerLimit $children
ThreadsPerChild $threads
ThreadLimit $threads
MinSpareThreads $threads
MaxSpareThreads $((children * threads))
MaxRequestWorkers $((children * threads))
$stack
Timeout 120
ProxyPass "/hub" "ws://127.0.0.1:$hubport/"
CONF
  apache2 -t -f "$dir/httpd.conf" >/dev/null 2>&1 || { apache2 -t -f "$dir/httpd.conf"; exit 1; }
  BENCH_INSTANCES+=("apache:$dir")
  apache2 -f "$dir/httpd.conf" -k start
  for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  bench_wait_children "$dir/httpd.pid" "$children"
}

node_stop() {
  bench_stop "apache:$1"
  bench_stop "node:$1"
}

bench_stop_peers() {
  local i
  for i in "${BENCH_INSTANCES[@]}"; do
    case $i in node:*) node_stop "${i#node:}" ;; *) bench_stop "$i" ;; esac
  done
  BENCH_INSTANCES=()
}
trap bench_stop_peers EXIT

# server name -> "URL PROTO PID-ARGS" of its running instance; TLS_URL: its
# wss:// URL (the module and nchan listen for TLS too when WITH_TLS=1).
declare -A URL TLS_URL PROTO PIDS
WITH_TLS=0

# start_servers KIND CONNS SERVER...: start those servers, tuned for KIND
# (fanout: 2 Apache children x 100 threads; capacity: CONNS connections).
start_servers() {
  local kind=$1 conns=$2 p hp tp="" children threads stack="" srv; shift 2
  if [ "$kind" = fanout ]; then children=2; threads=100
  else children=$(bench_capacity_children "$conns"); threads=$(bench_capacity_threads "$conns"); stack=$(bench_capacity_conf); fi
  for srv in "$@"; do
    p=$(bench_free_port "$port"); port=$((p + 1))
    if [ "$WITH_TLS" = 1 ]; then tp=$(bench_free_port "$port"); port=$((tp + 1)); fi
    case $srv in
      wsbridge)
        if [ "$kind" = fanout ]; then bench_wsbridge_start "$out/wsbridge" "$p" 1 200 "$WSBRIDGE_FANOUT_CONF" "$tp"
        else bench_wsbridge_capacity_start "$out/wsbridge" "$p" "$conns" "$tp"; fi
        URL[$srv]=ws://127.0.0.1:$p/ws/chat; TLS_URL[$srv]=wss://127.0.0.1:$tp/ws/chat
        PROTO[$srv]=chat; PIDS[$srv]="--pid-file $out/wsbridge/httpd.pid" ;;
      nchan)
        bench_nchan_start "$out/nchan" "$p" "$conns" "$NCHAN_WORKERS" "$tp"
        URL[$srv]=ws://127.0.0.1:$p/sub; TLS_URL[$srv]=wss://127.0.0.1:$tp/sub
        PROTO[$srv]=raw; PIDS[$srv]="--pid-file $out/nchan/nginx.pid" ;;
      node)
        hp=$(bench_free_port $((p + 1))); port=$((hp + 1))
        node_start "$out/node-proxy" "$p" "$hp" "$children" "$threads" "$stack"
        URL[$srv]=ws://127.0.0.1:$p/hub; PROTO[$srv]=raw
        PIDS[$srv]="--pid-file $out/node-proxy/httpd.pid --pid-file $out/node-proxy/node.pid" ;;
      node-direct)
        node_start "$out/node-direct" "" "$p" 0 0 ""
        URL[$srv]=ws://127.0.0.1:$p/; PROTO[$srv]=raw; PIDS[$srv]="--pid-file $out/node-direct/node.pid" ;;
    esac
  done
  sleep 1
}

servers="wsbridge"
for s in nchan node node-direct; do peer "$s" && servers="$servers $s"; done
tls_servers="wsbridge"; peer nchan && tls_servers="$tls_servers nchan"

install_deps
bench_build_loadgen
bench_check_quiet
echo "mod_wsbridge vs $PEERS: $(nproc) CPUs, $REPS repetition(s)$([ -n "$QUICK" ] && echo ', QUICK'), results: $RESULTS"
port=$(bench_free_port "${BENCH_PORT:-18580}")

if has S1 || has S2 || has S1-tls || has S2-tls; then
  if has S1-tls || has S2-tls; then WITH_TLS=1; fi
  # shellcheck disable=SC2086
  start_servers fanout 1000 $servers
  WITH_TLS=0
  for r in $(seq 1 "$REPS"); do
    for sc in S1 S2 S1-tls S2-tls; do
      has "$sc" || continue
      list=$servers; [ "${sc%-tls}" != "$sc" ] && list=$tls_servers
      for srv in $list; do
        if [ "${sc%-tls}" = S1 ]; then load=(--senders 10 --rate 1000); else load=(--senders 100 --window 1); fi
        url=${URL[$srv]}; [ "${sc%-tls}" != "$sc" ] && url=${TLS_URL[$srv]}
        # shellcheck disable=SC2086
        bench_run "$srv" "$sc" "$r" -- broadcast --url "$url" --proto "${PROTO[$srv]}" --clients 100 \
          "${load[@]}" --size 64 --duration "$DUR" --warmup "$WARM" --threads "$THREADS" ${PIDS[$srv]} || true
      done
    done
  done
  bench_stop_peers
fi

# The last result line again under another scenario name (a peer's one run
# shown beside both of the module's S3 runs).
copy_last_result() {
  local line; line=$(tail -1 "$RESULTS")
  printf '%s\n' "$line" | sed "s/\"scenario\":\"[^\"]*\"/\"scenario\":\"$1\"/" >> "$RESULTS"
}

s3_runs=(); has S3 && s3_runs+=(""); has S3-tls && s3_runs+=(-tls)
if [ ${#s3_runs[@]} -gt 0 ]; then
  for r in $(seq 1 "$REPS"); do
    for tls in "${s3_runs[@]}"; do
      list=$servers; WITH_TLS=0
      if [ -n "$tls" ]; then list=$tls_servers; WITH_TLS=1; fi
      for srv in $list; do
        if [ "$srv" = wsbridge ]; then
          # Echo connections, then chat connections that all join one room;
          # each on a fresh server: its idle RSS is the baseline.
          for app in echo chat; do
            start_servers capacity "$S3_CONNS" wsbridge
            sleep 3
            extra=(--proto chat --join --room bench); [ "$app" = echo ] && extra=()
            base=${URL[wsbridge]%/ws/chat}; [ -n "$tls" ] && base=${TLS_URL[wsbridge]%/ws/chat}
            # shellcheck disable=SC2086
            bench_run wsbridge "S3-$app$tls" "$r" -- connect --url "$base/ws/$app" --clients "$S3_CONNS" \
              --hold "$HOLD" --concurrency 200 --threads "$THREADS" ${PIDS[wsbridge]} "${extra[@]}" || true
            bench_stop_peers
          done
          continue
        fi
        # A peer relays raw frames: every connection subscribes to the one
        # channel as it connects, so its one run stands beside both.
        start_servers capacity "$S3_CONNS" "$srv"
        sleep 3
        url=${URL[$srv]}; [ -n "$tls" ] && url=${TLS_URL[$srv]}
        # shellcheck disable=SC2086
        bench_run "$srv" "S3-echo$tls" "$r" -- connect --url "$url" --proto "${PROTO[$srv]}" --clients "$S3_CONNS" \
          --hold "$HOLD" --concurrency 200 --threads "$THREADS" ${PIDS[$srv]} || true
        copy_last_result "S3-chat$tls"
        bench_stop_peers
      done
    done
  done
  WITH_TLS=0
fi

meta="{\"machine\":$(bench_machine_json),\"params\":{\"quick\":$([ -n "$QUICK" ] && echo true || echo false),\"reps\":$REPS,\"loadgen_threads\":$THREADS,\"duration\":$DUR,\"warmup\":$WARM,\"s3_conns\":$S3_CONNS,\"s3_hold\":$HOLD,\"nchan_workers\":$NCHAN_WORKERS,\"peers\":\"$PEERS\"}}"
python3 "$root/bench/summarize.py" "$RESULTS" "$out/summary.json" --meta "$meta" --baseline wsbridge
echo "ratios are wsbridge / peer: above 1 is better for delivered/s, held, handshakes/s; below 1 is better for latency, CPU and KiB."

if has pusher; then
  echo
  echo "== the Pusher endpoint: S1/S2 fan-out through the HTTP API, client events, presence (scripts/bench-pusher.sh)"
  env BENCH_PUSHER_PEERS="soketi nchan" BENCH_REPS="$REPS" BENCH_SCENARIOS="${BENCH_PUSHER_SCENARIOS:-S1 S2 client presence}" \
    BENCH_DURATION="${BENCH_PUSHER_DURATION:-$DUR}" BENCH_WARMUP=1 MODULE="$MODULE" BUILD="$BUILD" \
    "$root/scripts/bench-pusher.sh"
fi
