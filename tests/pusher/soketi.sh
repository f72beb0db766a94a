#!/usr/bin/env bash
# The reference server for the Pusher tests: soketi (from node_modules, see
# setup.sh), bound to 127.0.0.1 on free ports, one app with known
# credentials, client events and user authentication on.
#
#   tests/pusher/soketi.sh start DIR   # prints the env for run.mjs (also in DIR/pusher.env)
#   tests/pusher/soketi.sh stop DIR
#
# NODES=2 starts two soketi nodes joined by soketi's cluster adapter, which
# talks over UDP unicast between two loopback ports only (PUSHER_PORT_B is the
# second node); with one node (the default) discovery is client-only on a
# private loopback port, so it never sends a packet.
#
# Settings that differ from soketi's defaults, to match the published Pusher
# limits/behaviour the suite checks: events over 10 KB are refused
# (maxEventPayloadInKb 10, soketi's default is 100); user authentication is
# enabled (soketi ignores pusher:signin otherwise) with a 10-minute sign-in
# deadline, so a connection that never signs in is not closed mid-run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

APP_ID=${SOKETI_APP_ID:-wsb-test}
APP_KEY=${SOKETI_APP_KEY:-wsb-test-key}
APP_SECRET=${SOKETI_APP_SECRET:-wsb-test-secret}
NODES=${NODES:-1}

stop_one() { # pidfile
  local pidfile=$1 pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  # Only ever signal the process this script started (checked by its command line).
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q soketi "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do # 5 s, then force
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "$cmd" in
  stop)
    for f in "$dir"/soketi-*.pid; do [ -e "$f" ] && stop_one "$f"; done
    exit 0
    ;;
  start) ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

soketi_bin="$here/node_modules/@soketi/soketi/bin/server.js"
if [ ! -f "$soketi_bin" ]; then
  echo "soketi: not installed; run $here/setup.sh first" >&2
  exit 1
fi
if [ "$NODES" != 1 ] && [ "$NODES" != 2 ]; then
  echo "soketi: NODES must be 1 or 2" >&2
  exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
for f in "$dir"/soketi-*.pid; do [ -e "$f" ] && stop_one "$f"; done

# Free ports, asked of the kernel: per node one TCP port for WebSocket + HTTP
# API, one for soketi's always-on metrics listener, one UDP port for discovery.
read -r -a ports < <(node -e '
  const net = require("net"), dgram = require("dgram");
  const n = Number(process.argv[1]);
  const tcp = () => new Promise((res, rej) => { const s = net.createServer(); s.on("error", rej);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); }); });
  const udp = () => new Promise((res, rej) => { const s = dgram.createSocket("udp4"); s.on("error", rej);
    s.bind(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); }); });
  (async () => { const out = []; for (let i = 0; i < n; i++) out.push(await tcp(), await tcp(), await udp());
    console.log(out.join(" ")); })();' "$NODES")

unicast=""
if [ "$NODES" = 2 ]; then unicast="127.0.0.1:${ports[2]},127.0.0.1:${ports[5]}"; fi
prefix="wsb-$$-$RANDOM"

for i in $(seq 0 $((NODES - 1))); do
  port=${ports[$((i * 3))]} mport=${ports[$((i * 3 + 1))]} uport=${ports[$((i * 3 + 2))]}
  node -e '
    const [file, appId, key, secret, port, mport, uport, nodes, unicast, prefix] = process.argv.slice(1);
    const two = nodes === "2";
    const config = {
      host: "127.0.0.1", port: Number(port),
      "metrics.host": "127.0.0.1", "metrics.port": Number(mport),
      "adapter.driver": two ? "cluster" : "local",
      // node-discover options: bind loopback only; one node listens without
      // ever sending (client only), two nodes talk unicast to each other.
      cluster: { address: "127.0.0.1", hostname: "127.0.0.1", port: Number(uport), prefix,
        broadcast: "127.255.255.255", unicast: two ? unicast : null, multicast: null,
        client: true, server: two, ignoreProcess: true,
        helloInterval: 500, checkInterval: 500, nodeTimeout: 2000, masterTimeout: 2000 },
      shutdownGracePeriod: 200,
      userAuthenticationTimeout: 600000,
      "appManager.array.apps": [{ id: appId, key, secret, enableClientMessages: true,
        enableUserAuthentication: true, maxEventPayloadInKb: 10, enabled: true }],
    };
    require("fs").writeFileSync(file, JSON.stringify(config, null, 2));
  ' "$dir/soketi-$i.json" "$APP_ID" "$APP_KEY" "$APP_SECRET" "$port" "$mport" "$uport" "$NODES" "$unicast" "$prefix"
  # cwd = DIR: soketi reads a .env from its working directory (there is none there).
  (cd "$dir" && exec setsid node "$soketi_bin" start --config="$dir/soketi-$i.json" \
      >"$dir/soketi-$i.log" 2>&1 </dev/null) &
  echo $! >"$dir/soketi-$i.pid"
done

# Ready when every node answers its HTTP API (bounded: 15 s).
for i in $(seq 0 $((NODES - 1))); do
  port=${ports[$((i * 3))]}
  ok=0
  for _ in $(seq 1 150); do
    if node -e '
      const http = require("http");
      const r = http.get({ host: "127.0.0.1", port: process.argv[1], path: "/", timeout: 500 }, (res) => process.exit(res.statusCode === 200 ? 0 : 1));
      r.on("error", () => process.exit(1)); r.on("timeout", () => { r.destroy(); process.exit(1); });' "$port"; then
      ok=1; break
    fi
    kill -0 "$(cat "$dir/soketi-$i.pid")" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then
    echo "soketi: node $i did not start; log: $dir/soketi-$i.log" >&2
    tail -n 20 "$dir/soketi-$i.log" >&2 || true
    for f in "$dir"/soketi-*.pid; do [ -e "$f" ] && stop_one "$f"; done
    exit 1
  fi
done
# Two nodes: give discovery a moment to see each other (hello every 0.5 s).
if [ "$NODES" = 2 ]; then sleep 1.5; fi

{
  echo "PUSHER_TARGET=soketi"
  echo "PUSHER_HOST=127.0.0.1"
  echo "PUSHER_PORT=${ports[0]}"
  if [ "$NODES" = 2 ]; then echo "PUSHER_PORT_B=${ports[3]}"; fi
  echo "PUSHER_APP_ID=$APP_ID"
  echo "PUSHER_APP_KEY=$APP_KEY"
  echo "PUSHER_APP_SECRET=$APP_SECRET"
} >"$dir/pusher.env"
cat "$dir/pusher.env"
