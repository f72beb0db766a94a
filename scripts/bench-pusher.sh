#!/usr/bin/env bash
# `make bench-pusher`: the Pusher endpoint (WSBridgeApp pusher, /app/<key>
# and the HTTP API under /apps/) against soketi 1.6.1, in one run, on
# 127.0.0.1 (docs/benchmark-pusher.md has the method and the figures).
#
#   S1 fan-out     100 subscribers of one public channel; 1,000 events/s
#                  for 10 s, each its own signed POST /apps/<id>/events
#                  (open loop, up to 32 requests in flight, 64-byte data
#                  with the due time in it): 100,000 deliveries/s expected
#   S2 saturation  500 subscribers; closed loop: BENCH_S2_SLOTS slots, each
#                  POSTs a batch_events of 10 events and sends the next one
#                  when the answer came and all 10 reached every subscriber
#   client         100 subscribers of a private channel, 10 of them send
#                  client-bench events at 9/s each (under the 10/s per
#                  connection both servers enforce here): 8,910/s expected
#   presence       100 members join one presence channel at once, then
#                  leave at once: time until everyone saw everyone, frames
#                  per member
#
# BENCH_PUSHER_PEERS="soketi nchan" adds nginx + nchan to S1 and S2 (make
# bench-compare does): its subscribers are plain WebSockets on /sub and the
# events are POSTed one per request to its publisher location /pub (a batch
# of 10 is 10 pipelined requests); the same data, the same counting.
#
# Other work on the machine skews every figure: before each run the script
# waits (BENCH_WAIT_QUIET=30 s in all) for the CPUs to be 80% idle, and a run
# during which other processes used more than 0.25 cores is run again
# (BENCH_RETRIES=2 in all); the output marks what stayed noisy.
#
# Both servers run for the whole benchmark and take turns: for every
# scenario mod_wsbridge then soketi (soketi first on even repetitions),
# BENCH_REPS times; medians per figure. The load generator is
# build/pusher-load (bench/pusher/, C++: raw WebSocket + Pusher frames, its
# own request signing), built here when its sources changed.
#
# Environment (defaults):
#   BENCH_REPS=3              repetitions
#   BENCH_SCENARIOS="S1 S2 client presence"
#   BENCH_DURATION=10         measured seconds (S1, S2, client); BENCH_WARMUP=1
#   BENCH_S1_RATE=1000 BENCH_S1_BATCH=1 BENCH_S1_SUBS=100 BENCH_S1_CONNS=32
#   BENCH_S2_SUBS=500 BENCH_S2_SLOTS=8
#   EXTRA_CONF=FILE           Included in Apache's config (scripts/instance.sh),
#                             e.g. to try WSBridgeBatchWindow 0
#   BENCH_THREADS=1           receiving threads of the load generator
#   BENCH_CHILDREN=1 BENCH_APACHE_THREADS=640   Apache mpm_event
#   BENCH_PORT=18780          first port to try for Apache
# Results: build/bench-pusher/runs.jsonl (every run) and summary.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$root" && mkdir -p "${BUILD:-build}" && cd "${BUILD:-build}" && pwd)
out=$BUILD/bench-pusher
LOADGEN=$BUILD/pusher-load
MODULE=${MODULE:-$BUILD/mod_wsbridge.so}
PEERS=${BENCH_PUSHER_PEERS:-soketi}
# shellcheck source=../bench/lib.sh
. "$root/bench/lib.sh"
BENCH_INSTANCES=()

for tool in apache2 node g++; do
  command -v "$tool" >/dev/null || { echo "bench-pusher: $tool is not installed (make deps)" >&2; exit 1; }
done
[ -f "$MODULE" ] || make -s -C "$root" module
"$root/tests/pusher/setup.sh"   # npm ci incl. soketi, only when missing
[ -f "$root/tests/pusher/node_modules/@soketi/soketi/bin/server.js" ] ||
  { echo "bench-pusher: soketi is not installed (tests/pusher/setup.sh without PUSHER_NO_SOKETI)" >&2; exit 1; }

# The load generator, rebuilt when a source is newer.
stale=0
[ -x "$LOADGEN" ] || stale=1
for f in "$root"/bench/pusher/*.cpp "$root"/bench/pusher/*.h; do [ "$f" -nt "$LOADGEN" ] && stale=1; done
if [ $stale = 1 ]; then
  echo "building $LOADGEN"
  ${CXX:-g++} -std=c++17 -O2 -Wall -Wextra -Werror -I"$root/bench/pusher" "$root"/bench/pusher/*.cpp \
    -o "$LOADGEN" -lcrypto -lpthread
fi

apache_dir=$out/apache
soketi_dir=$out/soketi
nchan_dir=$out/nchan
stop_all() {
  [ -f "$apache_dir/httpd.conf" ] && QUIET=1 "$root/scripts/instance.sh" stop "$apache_dir" >/dev/null 2>&1 || true
  "$root/tests/pusher/soketi.sh" stop "$soketi_dir" >/dev/null 2>&1 || true
  bench_stop "nginx:$nchan_dir" 2>/dev/null || true
}
# A previous run that was killed may have left its servers running.
stop_all
rm -rf "$out"
mkdir -p "$apache_dir" "$soketi_dir" "$nchan_dir"
chmod 755 "$out" "$apache_dir"
trap stop_all EXIT
trap 'exit 130' INT TERM

IDLE=$(bench_idle_pct)
if [ "$IDLE" -lt 85 ]; then
  echo "WARNING: the machine is only ${IDLE}% idle before the run; figures will be noisy." >&2
  ps -eo pcpu,comm --sort=-pcpu | sed -n 2,4p | sed 's/^/  busy: /' >&2
fi

CHILDREN=${BENCH_CHILDREN:-1}
ATHREADS=${BENCH_APACHE_THREADS:-640}
PORT=$(bench_free_port "${BENCH_PORT:-18780}")
PORT=$PORT MPM=event CHILDREN=$CHILDREN THREADS=$ATHREADS MAXWORKERS=$((CHILDREN * ATHREADS)) \
  QUIET=1 MODULE=$MODULE "$root/scripts/instance.sh" start "$apache_dir"
# soketi's default is no limit on client events; Pusher's (and the
# module's) is 10 per second per connection: the same here.
SOKETI_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC=10 "$root/tests/pusher/soketi.sh" start "$soketi_dir" >/dev/null
NCHAN_PORT=0
case " $PEERS " in *" nchan "*)
  command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] ||
    { echo "bench-pusher: nginx + nchan are not installed (make bench-compare installs them)" >&2; exit 1; }
  NCHAN_PORT=$(bench_free_port $((PORT + 1)))
  bench_nchan_start "$nchan_dir" "$NCHAN_PORT" 2000 1 ;;
esac
export BP_NCHAN_PORT=$NCHAN_PORT BP_PEERS=$PEERS

export BP_ROOT=$root BP_OUT=$out BP_LOADGEN=$LOADGEN BP_PORT=$PORT BP_IDLE=$IDLE \
  BP_APACHE="event ${CHILDREN}x${ATHREADS}"
BP_COMMIT=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$root" && git status --porcelain --untracked-files=no 2>/dev/null)" ]; then BP_COMMIT="$BP_COMMIT+changes"; fi
export BP_COMMIT
BP_MACHINE="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
BP_MACHINE="$BP_MACHINE, $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
BP_MACHINE="$BP_MACHINE, $(apache2 -v | sed -n 's/^Server version: //p'), node $(node --version)"
export BP_MACHINE
BP_MODULE_BUILT="$MODULE, built $(date -u -r "$MODULE" '+%Y-%m-%d %H:%M UTC')"
export BP_MODULE_BUILT

/usr/bin/python3 - <<'PY'
import json
import os
import statistics
import subprocess
import sys
import time

E = os.environ
root, out = E["BP_ROOT"], E["BP_OUT"]
REPS = int(E.get("BENCH_REPS", "3"))
SCEN = E.get("BENCH_SCENARIOS", "S1 S2 client presence").split()
DUR = E.get("BENCH_DURATION", "10")
WARM = E.get("BENCH_WARMUP", "1")
THREADS = E.get("BENCH_THREADS", "1")
S1_RATE = E.get("BENCH_S1_RATE", "1000")
S1_BATCH = E.get("BENCH_S1_BATCH", "1")
S1_SUBS = E.get("BENCH_S1_SUBS", "100")
S2_SUBS = E.get("BENCH_S2_SUBS", "500")
S2_SLOTS = E.get("BENCH_S2_SLOTS", "8")
S1_CONNS = E.get("BENCH_S1_CONNS", "32")

soketi_env = dict(l.split("=", 1) for l in open(os.path.join(out, "soketi", "pusher.env")).read().split() if "=" in l)
servers = {
    "wsbridge": ["--env", os.path.join(out, "apache", "pusher.env"), "--port", E["BP_PORT"],
                 "--pid-file", os.path.join(out, "apache", "httpd.pid")],
    "soketi": ["--env", os.path.join(out, "soketi", "pusher.env"), "--port", soketi_env["PUSHER_PORT"],
               "--pid-file", os.path.join(out, "soketi", "soketi-0.pid")],
}
if "nchan" in E["BP_PEERS"].split():
    servers["nchan"] = ["--nchan", "--port", E["BP_NCHAN_PORT"], "--pid-file", os.path.join(out, "nchan", "nginx.pid")]
PEERS = [p for p in ("soketi", "nchan") if p in servers]
# nchan has no client events and no presence: it runs S1 and S2 only.
def runs_on(server, scen):
    return server != "nchan" or scen in ("S1", "S2")
common = ["--duration", DUR, "--warmup", WARM, "--threads", THREADS]
scenarios = {
    "S1": ["fanout", "--subs", S1_SUBS, "--rate", S1_RATE, "--batch", S1_BATCH, "--http-conns", S1_CONNS] + common,
    "S2": ["fanout", "--subs", S2_SUBS, "--rate", "0", "--batch", "10", "--http-conns", S2_SLOTS] + common,
    "client": ["client", "--subs", "100", "--senders", "10", "--sender-rate", "9"] + common,
    "presence": ["presence", "--subs", "100", "--threads", THREADS],
}
for s in SCEN:
    if s not in scenarios:
        sys.exit(f"unknown scenario {s} (S1 S2 client presence)")

def idle_pct(sec=0.5):
    def read():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
        return sum(v), v[3] + v[4]
    a, ia = read()
    time.sleep(sec)
    b, ib = read()
    return 100.0 * (ib - ia) / max(1, b - a)

# Other engineers' builds share the two CPUs: before each run, wait (at most
# BENCH_WAIT_QUIET seconds in all) until the machine is 80% idle. Every run
# records how idle it was just before.
wait_budget = float(E.get("BENCH_WAIT_QUIET", "30"))
# A run during which other work used the CPUs is repeated (BENCH_RETRIES in all).
retries = int(E.get("BENCH_RETRIES", "2"))
repeated = 0
def wait_quiet():
    global wait_budget
    idle, waited = idle_pct(), 0.0
    while idle < 80 and wait_budget > 0:
        time.sleep(1)
        wait_budget -= 1.5
        waited += 1.5
        idle = idle_pct()
    return idle, waited

print(f"mod_wsbridge (Apache {E['BP_APACHE']}, port {E['BP_PORT']}) vs soketi 1.6.1 (port {soketi_env['PUSHER_PORT']})"
      + (f" and nginx + nchan (port {E['BP_NCHAN_PORT']}, S1/S2)" if "nchan" in servers else "") + "; "
      f"{REPS} repetitions, {DUR} s measured after {WARM} s; machine {E['BP_IDLE']}% idle before the run", flush=True)
runs = []
started = time.time()
with open(os.path.join(out, "runs.jsonl"), "w") as log:
    for rep in range(1, REPS + 1):
        for scen in SCEN:
            order = ["wsbridge"] + PEERS if rep % 2 else PEERS[::-1] + ["wsbridge"]
            order = [s for s in order if runs_on(s, scen)]
            for server in order:
                while True:
                    idle, waited = wait_quiet()
                    if waited:
                        print(f"  (waited {waited:.0f} s for the machine to calm down: {idle:.0f}% idle)", flush=True)
                    cmd = [E["BP_LOADGEN"]] + scenarios[scen] + servers[server] + ["--label", f"{server} {scen} #{rep}"]
                    try:
                        r = subprocess.run(["timeout", "-k", "5", "100"] + cmd, capture_output=True, text=True, timeout=110)
                        lines = r.stdout.strip().splitlines()
                    except subprocess.TimeoutExpired:
                        lines = []
                    js = next((json.loads(l) for l in reversed(lines) if l.startswith("{")), None)
                    human = next((l for l in lines if not l.startswith("{")), "(no output)")
                    if js is None or js.get("failed"):
                        js = {"failed": True, "error": human}
                    # CPU the machine spent on neither the server nor the load
                    # generator during the window: somebody else's work.
                    others = None
                    if "machine_busy_cores" in js:
                        others = round(max(0.0, js["machine_busy_cores"] - js["server_cpu_cores"] - js["client_cpu_cores"]), 2)
                    js.update(server=server, scenario=scen, rep=rep, idle_before=round(idle, 1), others_cores=others)
                    noisy = idle < 80 or (others or 0) > 0.25
                    again = noisy and retries > 0
                    note = ""
                    if noisy:
                        note = f"  [NOISY: {idle:.0f}% idle before, other work {others or 0:.2f} cores" + ("; again]" if again else "]")
                    print("  " + human + note, flush=True)
                    js["noisy"] = noisy
                    js["discarded"] = again
                    log.write(json.dumps(js) + "\n")
                    if not again:
                        runs.append(js)
                        break
                    retries -= 1
                    repeated += 1

def med(server, scen, key):
    vals = []
    for r in runs:
        if r["server"] != server or r["scenario"] != scen or r.get("failed"):
            continue
        v = r
        for k in key.split("."):
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None and v >= 0:
            vals.append(v)
    return statistics.median(vals) if vals else None

# (label, scenario, key, higher_is_better, format)
rows = [
    ("S1 delivered/s", "S1", "delivered_per_sec", True, "{:,.0f}"),
    ("S1 p50 latency (ms)", "S1", "latency_ms.p50", False, "{:.2f}"),
    ("S1 p99 latency (ms)", "S1", "latency_ms.p99", False, "{:.2f}"),
    ("S1 server CPU per delivery (us)", "S1", "server_cpu_us_per_delivery", False, "{:.2f}"),
    ("S2 delivered/s", "S2", "delivered_per_sec", True, "{:,.0f}"),
    ("S2 p99 latency (ms)", "S2", "latency_ms.p99", False, "{:.2f}"),
    ("S2 server CPU per delivery (us)", "S2", "server_cpu_us_per_delivery", False, "{:.2f}"),
    ("client events delivered/s", "client", "delivered_per_sec", True, "{:,.0f}"),
    ("client events p99 latency (ms)", "client", "latency_ms.p99", False, "{:.2f}"),
    ("presence: everyone saw everyone (ms)", "presence", "join_all_ms", False, "{:.1f}"),
    ("presence: frames per member", "presence", "frames_per_member", False, "{:.1f}"),
]
summary_rows = []
print()
head = f"{'median of ' + str(REPS):40s} {'mod_wsbridge':>14s}" + "".join(f" {p:>14s}" for p in PEERS)
print(head + "".join(f" {'ahead of ' + p:>16s}" for p in PEERS))
for label, scen, key, higher, f in rows:
    if scen not in SCEN:
        continue
    a = med("wsbridge", scen, key)
    row = {"figure": label, "scenario": scen, "key": key, "wsbridge": a, "higher_is_better": higher}
    cells, advs = "", ""
    for p in PEERS:
        b = med(p, scen, key) if runs_on(p, scen) else None
        adv = None
        if a is not None and b is not None and a > 0 and b > 0:
            adv = a / b if higher else b / a
        cells += f" {f.format(b) if b is not None else '-':>14s}"
        advs += f" {('%.2fx' % adv) if adv else '-':>16s}"
        row[p] = b
        row[p + "_advantage" if p != "soketi" else "wsbridge_advantage"] = adv
    print(f"{label:40s} {f.format(a) if a is not None else '-':>14s}" + cells + advs)
    summary_rows.append(row)
print()
print(f"{'where the CPU went (medians)':40s} {'server cores':>14s} {'client cores':>14s} {'busiest thread':>14s}")
cpu_rows = []
for scen in [s for s in SCEN if s != "presence"]:
    for server in ["wsbridge"] + [p for p in PEERS if runs_on(p, scen)]:
        row = {"scenario": scen, "server": server, "server_cores": med(server, scen, "server_cpu_cores"),
               "client_cores": med(server, scen, "client_cpu_cores"),
               "busiest_receiver_share": med(server, scen, "busiest_receiver_share")}
        cpu_rows.append(row)
        print(f"{scen + ' ' + server:40s} {row['server_cores'] or 0:14.2f} {row['client_cores'] or 0:14.2f} "
              f"{(row['busiest_receiver_share'] or 0) * 100:13.0f}%")
failed = [r for r in runs if r.get("failed")]
errors = [r for r in runs if not r.get("failed") and ((r.get("errors") or 0) if r["scenario"] == "presence"
          else r.get("errors", {}).get("total", 0))]
summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": E["BP_COMMIT"],
           "module": E["BP_MODULE_BUILT"],
           "machine": E["BP_MACHINE"], "idle_pct_before": int(E["BP_IDLE"]), "apache": E["BP_APACHE"],
           "reps": REPS, "duration": float(DUR), "warmup": float(WARM), "scenarios": {k: scenarios[k] for k in SCEN},
           "medians": summary_rows, "cpu": cpu_rows, "failed_runs": len(failed), "runs_with_errors": len(errors),
           "noisy_runs": len([r for r in runs if r.get("noisy")]), "repeated_runs": repeated,
           "wall_s": round(time.time() - started, 1)}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print(f"\n{len(runs)} runs in {summary['wall_s']:.0f} s, {len(failed)} failed, {len(errors)} with errors, "
      f"{summary['noisy_runs']} disturbed by other work ({repeated} repeated for that); "
      f"results: {out}/summary.json, {out}/runs.jsonl")
sys.exit(1 if failed else 0)
PY
