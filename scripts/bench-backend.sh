#!/usr/bin/env bash
# `make bench-backend`: echo through the same PHP backend, mod_wsbridge's
# in-process path against the real Pushpin, in one run, on 127.0.0.1.
#
#   mod_wsbridge: client -> Apache (WSBridgeApp backend, a sub-request per
#                 event batch) -> mod_proxy_fcgi -> php-fpm echo_backend.php
#   Pushpin:      client -> condure -> pushpin-proxy -> zurl -> HTTP POST to
#                 the same Apache -> mod_proxy_fcgi -> the same php-fpm pool
#
# One Apache and one php-fpm pool serve both paths (pm.max_children is the
# same because it is the same pool), so the PHP work is identical; the runs
# take turns (wsbridge, pushpin, wsbridge, ...), never at the same time.
# Pushpin runs as tests/backend/pushpin_ref.py sets it up: its packaged
# settings (log level info, client_buffer_size 8192: the messages are small),
# every port and socket private.
#
# The load: bench/loadgen echo, BENCH_CLIENTS connections each sending a
# BENCH_SIZE-byte text and waiting for its echo before the next (closed loop,
# one message in flight per connection), measured for BENCH_DURATION s after
# BENCH_WARMUP s; every run is also cut off by loadgen's --max-time and by
# `timeout`. loadgen checks every echo (a stamp in the text) and counts
# errors. Reported per path: round trips/s, p50 and p99 latency, server CPU
# per round trip (Apache + php-fpm, plus condure, pushpin-proxy,
# pushpin-handler and zurl for Pushpin), and the throughput ratio.
#
# Environment (defaults):
#   BENCH_CLIENTS=50  BENCH_SIZE=64  BENCH_DURATION=5  BENCH_WARMUP=1
#   BENCH_REPS=3          runs per path; the medians are reported
#   BENCH_PHP_CHILDREN=8  php-fpm pm.max_children (pm = dynamic)
#   BENCH_CHILDREN=2 BENCH_THREADS=64   Apache mpm_event children x threads
#   BENCH_PORT=18680      first port to try for Apache
# Results: build/bench-backend/runs.jsonl (every run) and summary.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$root" && mkdir -p "${BUILD:-build}" && cd "${BUILD:-build}" && pwd)
out=$BUILD/bench-backend
# shellcheck source=../bench/lib.sh
. "$root/bench/lib.sh"

for tool in pushpin condure zurl apache2; do
  command -v "$tool" >/dev/null || { echo "bench-backend: $tool is not installed (make deps)" >&2; exit 1; }
done
ls /usr/sbin/php-fpm* >/dev/null 2>&1 || { echo "bench-backend: php-fpm is not installed (make deps)" >&2; exit 1; }
[ -f "$BUILD/mod_wsbridge.so" ] || make -s -C "$root" module
bench_build_loadgen

# A previous run that was killed may have left its Apache running.
[ -f "$out/apache/httpd.pid" ] && PHP=1 QUIET=1 "$root/scripts/instance.sh" stop "$out/apache" >/dev/null 2>&1 || true
rm -rf "$out"
mkdir -p "$out"
chmod 755 "$out"
bench_check_quiet

export BB_ROOT=$root BB_OUT=$out BB_LOADGEN=$LOADGEN BB_MODULE=${MODULE:-$BUILD/mod_wsbridge.so}
export BB_IDLE_PCT=${BENCH_IDLE_PCT:-} BB_MACHINE
BB_MACHINE=$(bench_machine_json)
export BB_PORT
BB_PORT=$(bench_free_port "${BENCH_PORT:-18680}")

exec /usr/bin/python3 - <<'PY'
import json
import os
import signal
import statistics
import subprocess
import sys
import time

root, out = os.environ["BB_ROOT"], os.environ["BB_OUT"]
sys.path.insert(0, os.path.join(root, "tests", "backend"))
from pushpin_ref import Pushpin  # noqa: E402

E = os.environ
CLIENTS = int(E.get("BENCH_CLIENTS", "50"))
SIZE = int(E.get("BENCH_SIZE", "64"))
DURATION = float(E.get("BENCH_DURATION", "5"))
WARMUP = float(E.get("BENCH_WARMUP", "1"))
REPS = int(E.get("BENCH_REPS", "3"))
PHP_CHILDREN = int(E.get("BENCH_PHP_CHILDREN", "8"))
CHILDREN = int(E.get("BENCH_CHILDREN", "2"))
THREADS = int(E.get("BENCH_THREADS", "64"))
PORT = int(E["BB_PORT"])
MAX_TIME = 30 + WARMUP + DURATION + 3
apache_dir = os.path.join(out, "apache")
backend_dir = os.path.join(root, "tests", "backend")

def on_term(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)

os.makedirs(apache_dir, exist_ok=True)
os.chmod(apache_dir, 0o755)
extra = os.path.join(apache_dir, "bench-extra.conf")
with open(extra, "w") as f:
    f.write(f"""LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
# The script both paths run; Pushpin POSTs to it directly.
Alias /bench/ "{backend_dir}/"
<Directory "{backend_dir}">
  Require all granted
</Directory>
<Location /ws/php>
  SetHandler wsbridge
  WSBridgeApp backend
  WSBridgeBackend /bench/echo_backend.php
</Location>
""")
env = dict(E, PORT=str(PORT), MPM="event", CHILDREN=str(CHILDREN), THREADS=str(THREADS),
           MAXWORKERS=str(CHILDREN * THREADS), QUIET="1", PHP="1", PHP_CHILDREN=str(PHP_CHILDREN),
           EXTRA_CONF=extra, MODULE=E["BB_MODULE"])
env.pop("WSB_BACKEND_LOG", None)  # the backend logs nothing during the benchmark
instance = [os.path.join(root, "scripts", "instance.sh")]


def loadgen(url, label, pids, pid_files):
    cmd = [E["BB_LOADGEN"], "echo", "--url", url, "--clients", str(CLIENTS), "--size", str(SIZE),
           "--window", "1", "--duration", str(DURATION), "--warmup", str(WARMUP), "--drain", "3",
           "--max-time", str(MAX_TIME), "--label", label, "--no-pss"]
    if pids:
        cmd += ["--server-pids", ",".join(map(str, pids))]
    for f in pid_files:
        cmd += ["--pid-file", f]
    try:
        r = subprocess.run(["timeout", "-k", "5", str(int(MAX_TIME + 30))] + cmd,
                           capture_output=True, text=True, timeout=MAX_TIME + 60)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    lines = r.stdout.splitlines()
    js = [json.loads(l) for l in lines if l.startswith("{")]
    human = next((l for l in lines if not l.startswith("{")), r.stderr.strip()[:300])
    return (js[-1] if js else None), human


def figures(j):
    lat = j.get("latency_us", {})
    return {"msgs_per_sec": j.get("delivered_per_sec", 0), "p50_ms": lat.get("p50", 0) / 1000,
            "p99_ms": lat.get("p99", 0) / 1000, "cpu_us_per_msg": j.get("server_cpu_us_per_msg"),
            "server_cpu_cores": j.get("server_cpu_cores"), "delivery_ratio": j.get("delivery_ratio"),
            "errors": sum(v for v in j.get("errors", {}).values())}


pushpin = None
results = {"wsbridge": [], "pushpin": []}
started = False
try:
    r = subprocess.run(instance + ["start", apache_dir], env=env, capture_output=True, text=True, timeout=60)
    started = True
    if r.returncode != 0:
        raise SystemExit("Apache did not start: " + r.stdout + r.stderr)
    pid_files = [os.path.join(apache_dir, "httpd.pid"), os.path.join(apache_dir, "php-fpm.pid")]
    pushpin = Pushpin(PORT, client_maxconn=max(1000, CLIENTS * 2)).start()
    pp_pids = [pushpin.runner.pid, pushpin.zurl.pid]
    urls = {"wsbridge": (f"ws://127.0.0.1:{PORT}/ws/php", []),
            "pushpin": (f"ws://127.0.0.1:{pushpin.http_port}/bench/echo_backend.php", pp_pids)}
    print(f"echo through tests/backend/echo_backend.php: {CLIENTS} clients, closed loop (1 in flight each), "
          f"{SIZE} B texts, {WARMUP:g} s warm-up + {DURATION:g} s measured, {REPS} runs per path; "
          f"php-fpm pm.max_children {PHP_CHILDREN}, Apache mpm_event {CHILDREN}x{THREADS}", flush=True)
    with open(os.path.join(out, "runs.jsonl"), "w") as runs:
        for rep in range(1, REPS + 1):
            for name in ("wsbridge", "pushpin"):
                url, pids = urls[name]
                j, human = loadgen(url, name, pids, pid_files)
                print(f"  {name:9s} #{rep}  {human}", flush=True)
                if j is None:
                    raise SystemExit(f"{name}: no result ({human})")
                j.update(server=name, rep=rep)
                runs.write(json.dumps(j) + "\n")
                results[name].append(figures(j))
finally:
    if pushpin:
        pushpin.stop()
    if started:
        subprocess.run(instance + ["stop", apache_dir], env=env, capture_output=True, timeout=60)

med = {}
for name, runs in results.items():
    med[name] = {k: statistics.median([r[k] for r in runs if r[k] is not None] or [0])
                 for k in runs[0]}
    med[name]["errors"] = sum(r["errors"] for r in runs)
ratio = med["wsbridge"]["msgs_per_sec"] / med["pushpin"]["msgs_per_sec"] if med["pushpin"]["msgs_per_sec"] else 0
print()
print(f"{'median of ' + str(REPS):14s} {'msgs/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU us/msg':>11s} {'errors':>7s}")
for name in ("wsbridge", "pushpin"):
    m = med[name]
    cpu = f"{m['cpu_us_per_msg']:.0f}" if m["cpu_us_per_msg"] else "-"
    print(f"{name:14s} {m['msgs_per_sec']:9.0f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} {cpu:>11s} {m['errors']:7d}")
print(f"throughput ratio mod_wsbridge / Pushpin: {ratio:.2f}x (goal: >= 2x)")
summary = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": json.loads(E["BB_MACHINE"]),
           "clients": CLIENTS, "size": SIZE, "duration": DURATION, "warmup": WARMUP, "reps": REPS,
           "php_children": PHP_CHILDREN, "apache": f"event {CHILDREN}x{THREADS}", "median": med,
           "ratio": round(ratio, 3), "runs": results}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print(f"results: {out}/summary.json, {out}/runs.jsonl")
sys.exit(1 if any(m["errors"] for m in med.values()) else 0)
PY
