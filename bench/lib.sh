# Shared by scripts/bench.sh, bench-compare.sh and bench-pusher.sh (sourced, not run).
# Expects: root (the repository), BUILD (build directory, absolute).

LOADGEN=${LOADGEN:-$BUILD/loadgen}

# Builds the load generator when a source is newer than the binary. The
# protocol layer (frame header encoding, masking) is the module's own.
bench_build_loadgen() {
  local srcs=("$root"/bench/*.cpp "$root"/bench/*.h
              "$root"/src/protocol/frame_encoder.cpp "$root"/src/protocol/frame_encoder.h
              "$root"/src/protocol/masking.cpp "$root"/src/protocol/masking.h)
  local stale=0 f
  [ -x "$LOADGEN" ] || stale=1
  for f in "${srcs[@]}"; do [ "$f" -nt "$LOADGEN" ] && stale=1; done
  [ $stale = 0 ] && return 0
  echo "building $LOADGEN"
  mkdir -p "$(dirname "$LOADGEN")"
  ${CXX:-g++} -std=c++17 -O2 -Wall -Wextra -Werror -I"$root/src" -I"$root/bench" \
    "$root/bench/loadgen.cpp" "$root/bench/worker.cpp" "$root/bench/worker_conn.cpp" \
    "$root/src/protocol/frame_encoder.cpp" "$root/src/protocol/masking.cpp" \
    -o "$LOADGEN" -lssl -lcrypto -lpthread
}

# A TCP port on 127.0.0.1 that nothing listens on, from $1 upwards.
bench_free_port() {
  local p=$1
  while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# Idle share of both CPUs over one second, in percent (for the noise warning).
bench_idle_pct() {
  local a b
  read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ < /proc/stat
  sleep 1
  read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ < /proc/stat
  a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8)); b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8))
  echo $(( (b4 + b5 - a4 - a5) * 100 / (b - a > 0 ? b - a : 1) ))
}

# Warns when something else is using the CPUs: the load generator and the
# server share this machine's cores, so a concurrent build skews every figure.
bench_check_quiet() {
  local idle; idle=$(bench_idle_pct)
  if [ "$idle" -lt 85 ]; then
    echo "WARNING: the machine is only ${idle}% idle before the run; figures will be noisy." >&2
    ps -eo pcpu,comm --sort=-pcpu | sed -n 2,4p | sed 's/^/  busy: /' >&2
  fi
  BENCH_IDLE_PCT=$idle
}

bench_machine_json() {
  local cpu; cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"//g')
  printf '{"nproc":%s,"cpu":"%s","mem_gib":%s,"kernel":"%s","apache":"%s","idle_pct_before":%s,"date":"%s"}' \
    "$(nproc)" "$cpu" "$(awk '/MemTotal/ {printf "%d", $2/1048576}' /proc/meminfo)" "$(uname -r)" \
    "$(apache2 -v 2>/dev/null | sed -n 's/^Server version: //p')" "${BENCH_IDLE_PCT:-null}" "$(date -u +%FT%TZ)"
}

# bench_run SERVER SCENARIO REP -- loadgen args...
# Runs one bounded load-generator run, shows its human line, and appends its
# JSON line, tagged, to $RESULTS. Returns non-zero when the run failed.
bench_run() {
  local server=$1 scenario=$2 rep=$3; shift 4
  local out rc=0 max=300
  out=$(timeout -k 5 "$max" "$LOADGEN" "$@" 2>&1) || rc=$?
  local human json
  human=$(printf '%s\n' "$out" | grep -v '^{' | head -3)
  json=$(printf '%s\n' "$out" | grep '^{' | tail -1)
  printf '  %-9s %-10s #%s  %s\n' "$server" "$scenario" "$rep" "$human"
  if [ -n "$json" ]; then
    printf '%s\n' "$json" | sed "s/^{/{\"server\":\"$server\",\"scenario\":\"$scenario\",\"rep\":$rep,/" >> "$RESULTS"
  else
    echo "    (no result, exit $rc)" >&2
    printf '{"server":"%s","scenario":"%s","rep":%s,"failed":true,"exit":%s}\n' "$server" "$scenario" "$rep" "$rc" >> "$RESULTS"
  fi
  return $rc
}

# --- server instances --------------------------------------------------------
# Every instance lives in its own directory under build/bench/ and is stopped
# by bench_stop_all (scripts set `trap bench_stop_all EXIT`).
BENCH_INSTANCES=()

# The chat rate limit must not refuse the load: the default (20 msg/s per
# connection, burst 40) would close S2's senders with 1008.
# BENCH_WSBRIDGE_CONF: more configuration text for the module's fan-out
# instance (S1, S2), e.g. "WSBridgeBatchWindow 500us" to try a setting.
WSBRIDGE_FANOUT_CONF='<Location /ws/chat>
  WSBridgeRateLimit 100000 100000
</Location>'
[ -n "${BENCH_WSBRIDGE_CONF:-}" ] && WSBRIDGE_FANOUT_CONF+=$'\n'$BENCH_WSBRIDGE_CONF

# Waits until DIR/PIDFILE names a running master with at least N children.
bench_wait_children() {
  local pidfile=$1 n=$2 i
  for i in $(seq 1 100); do
    [ -s "$pidfile" ] && [ "$(pgrep -c -P "$(cat "$pidfile")" 2>/dev/null || echo 0)" -ge "$n" ] && return 0
    sleep 0.1
  done
  echo "warning: $pidfile: server or its $n children missing after 10 s" >&2
}

# wss:// runs: one self-signed ECDSA P-256 certificate for every server (an
# RSA key would make the S3 handshakes cost several times more, on both
# sides); TLS version and cipher are whatever OpenSSL's defaults negotiate
# (the load generator prints them: TLSv1.3 TLS_AES_256_GCM_SHA384 on
# Debian 12). bench_tls_cert DIR writes DIR/server.crt and DIR/server.key.
bench_tls_cert() {
  local dir=$1
  mkdir -p "$dir"
  [ -f "$dir/server.crt" ] && [ -f "$dir/server.key" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null
}

# bench_wsbridge_start DIR PORT CHILDREN THREADS EXTRA_CONF_TEXT [TLS_PORT]
# mod_wsbridge in a private Apache (scripts/instance.sh), mpm_event; with
# TLS_PORT, mod_ssl listens there too (bench_tls_cert's certificate).
bench_wsbridge_start() {
  local dir=$1 port=$2 children=$3 threads=$4 extra=$5 tls_port=${6:-}
  mkdir -p "$dir"
  if [ -n "$tls_port" ]; then
    bench_tls_cert "$BUILD/bench/tls"
    cp "$BUILD/bench/tls/server.crt" "$BUILD/bench/tls/server.key" "$dir/"
  fi
  printf '%s\n' "$extra" > "$dir/bench-extra.conf"
  BENCH_INSTANCES+=("wsbridge:$dir")
  SSL_PORT=$tls_port PORT=$port MPM=event CHILDREN=$children THREADS=$threads MAXWORKERS=$((children * threads)) \
    EXTRA_CONF="$dir/bench-extra.conf" MODULE="${MODULE:-$BUILD/mod_wsbridge.so}" QUIET=1 \
    "$root/scripts/instance.sh" start "$dir"
  bench_wait_children "$dir/httpd.pid" "$children"
}

# Capacity tuning for N idle WebSockets (docs/capacity.md). Each holds an
# Apache worker thread, so:
#   - one child per CPU (BENCH_S3_CHILDREN) with ListenCoresBucketsRatio 1:
#     each child gets a listening socket of its own (SO_REUSEPORT) and the
#     kernel spreads connections across them by hash, evenly. Several
#     children on one socket race for every accept() and fill unevenly (at
#     10,000 over 7 children x 2,000: 1,208 to 1,958 per child, one child
#     none), and a full child answers 503 while another has room. Few
#     children also means fewer copies of the chat's rooms and of the
#     libraries' pages;
#   - threads per child: the child's share of N plus 10%, plus the reserve
#     (WSBridgeReserveWorkers BENCH_S3_RESERVE, 32; the default, 1/8 of the
#     threads, would keep 690 of 5,532 idle);
#   - ExtendedStatus Off: with it (the default once mod_status is loaded)
#     the end of every request, the upgrade included, calls times(), which
#     walks every thread of the child: +70 us per handshake at 2,000 threads;
#   - ThreadStackSize BENCH_S3_STACK (128K): the deepest stack page touched
#     was 56 KiB below the top (72 KiB at LogLevel trace8); 64K overflows.
S3_CHILDREN=${BENCH_S3_CHILDREN:-$(nproc)}
S3_RESERVE=${BENCH_S3_RESERVE:-32}
S3_STACK=${BENCH_S3_STACK:-131072}
bench_capacity_children() { echo "$S3_CHILDREN"; }
bench_capacity_threads() { echo $(( ($1 * 11 / 10 + S3_CHILDREN - 1) / S3_CHILDREN + S3_RESERVE )); }
bench_capacity_conf() {
  printf '%s\n' "ThreadStackSize $S3_STACK" "ListenCoresBucketsRatio 1" "ExtendedStatus Off" \
    "MaxConnectionsPerChild 0"
}
bench_wsbridge_capacity_start() {
  local dir=$1 port=$2 conns=$3 tls_port=${4:-}
  bench_wsbridge_start "$dir" "$port" "$S3_CHILDREN" "$(bench_capacity_threads "$conns")" "$(bench_capacity_conf)
WSBridgeReserveWorkers $S3_RESERVE" "$tls_port"
}

# nginx + nchan (scripts/bench-compare.sh, bench-pusher.sh): private prefix,
# no access log, one channel: WebSocket pub/sub on /sub, HTTP POST
# publishing on /pub.
bench_nchan_start() {
  local dir=$1 port=$2 conns=$3 workers=${4:-1} tls_port=${5:-} ssl=""
  mkdir -p "$dir/tmp" "$dir/logs"
  # With a TLS port, an ssl listener there too (bench_tls_cert's certificate).
  if [ -n "$tls_port" ]; then
    bench_tls_cert "$BUILD/bench/tls"
    # nginx before 1.23.4 leaves TLS 1.3 out of its default protocols
    ssl="listen 127.0.0.1:$tls_port ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $BUILD/bench/tls/server.crt;
    ssl_certificate_key $BUILD/bench/tls/server.key;"
  fi
  local user=""; [ "$(id -u)" = 0 ] && user="user www-data;"
  cat > "$dir/nginx.conf" <<CONF
# Generated by scripts/bench-compare.sh
worker_processes $workers;
worker_rlimit_nofile $((conns * 2 + 1024));
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
$user
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
events { worker_connections $((conns + 1024)); }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    $ssl
    location = /sub {
      nchan_pubsub websocket;
      nchan_channel_id bench;
      nchan_message_buffer_length 10;
      nchan_message_timeout 30s;
    }
    location = /pub {
      nchan_publisher http;
      nchan_channel_id bench;
      nchan_message_buffer_length 10;
      nchan_message_timeout 30s;
    }
  }
}
CONF
  BENCH_INSTANCES+=("nginx:$dir")
  nginx -t -q -c "$dir/nginx.conf" -p "$dir/" 2>&1 | grep -v 'setrlimit\|\[info\]' >&2 || true
  nginx -c "$dir/nginx.conf" -p "$dir/" 2>&1 | grep -v 'setrlimit\|\[info\]' >&2 || true
  bench_wait_children "$dir/nginx.pid" "$workers"
}

bench_stop() {
  local kind=${1%%:*} dir=${1#*:} pidfile pid i
  case $kind in
    wsbridge) QUIET=1 "$root/scripts/instance.sh" stop "$dir" >/dev/null 2>&1 || true; return 0 ;;
    apache) pidfile=$dir/httpd.pid ;;
    nginx) pidfile=$dir/nginx.pid ;;
    *) pidfile=$dir/$kind.pid ;;
  esac
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  case $kind in
    apache) apache2 -f "$dir/httpd.conf" -k stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true ;;
    nginx) nginx -c "$dir/nginx.conf" -p "$dir/" -s stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true ;;
    *) kill "$pid" 2>/dev/null || true ;;
  esac
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

bench_stop_all() {
  local i
  for i in "${BENCH_INSTANCES[@]}"; do bench_stop "$i"; done
  BENCH_INSTANCES=()
}
