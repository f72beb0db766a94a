#!/usr/bin/python3
"""The chaos run (make chaos; a short one in make test): many chat clients
talk while Apache is restarted, its children are killed and (second run)
Redis goes away, and afterwards every client's log is checked.

    /usr/bin/python3 tests/chaos/chaos.py [--time SECONDS] [--runs shm,redis]
                                          [--clients 200] [--rooms 5] [--doc FILE]

Two runs, each --time/2 seconds of faults (bounded; CHAOS_TIME in make):

  shm    one Apache, mpm_event, 4 children, the shared-memory bus;
  redis  two Apache servers (2 children each) sharing one Redis.

Faults, one at a time: a graceful restart every 30 s, a kill -9 of a random
child every 45 s, one hard stop/start, and (redis) a Redis restart every
60 s; shorter runs shrink the periods so each kind still happens.

The clients (tests/chaos/chaos_client.py) send messages with a client id
(`cid`), one in flight at a time, and resume with `since` on reconnect. The
checker (tests/chaos/chaos_check.py) then demands: every message a user
sent was acknowledged or reported failed (never neither: that is a loss);
every published message reached every member once, in order, unless a
`complete:false` history answer or a restart of the bus itself accounts
for the gap (both counted); nothing published twice; no child crashed; the
parent's memory stayed flat. It prints one table and exits 1 on any fault.
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

from harness import Apache  # noqa: E402
from chaos_client import Client, now_ms  # noqa: E402
from chaos_check import check, table, markdown_rows  # noqa: E402
from redis_server import RedisServer  # noqa: E402

# Generous bound for one client-visible step (connect, join): the machine is
# a loaded 2-core box.
SETTLE_TIMEOUT = 90


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Run:
    """One chaos run: servers, clients, the fault schedule, the numbers."""

    def __init__(self, kind, seconds, n_clients, n_rooms, out_dir, faults="graceful,kill,stop,redis",
                 extra_conf=""):
        self.kinds = set(faults.split(","))
        self.extra_conf = extra_conf
        self.kind = kind
        self.seconds = seconds
        self.n_clients = n_clients
        self.n_rooms = n_rooms
        self.out_dir = out_dir
        self.epoch = 0          # bumped when the bus itself restarts (shm: hard stop)
        self.counts = {"restarts": 0, "kills": 0, "outages": 0, "redis_restarts": 0}
        self.faults = []        # (t, what)
        self.stop_ms = {}       # epoch -> when the hard stop that ended it began (now_ms)
        self.servers = []
        self.redis = None
        self.clients = []
        self.rss = {}
        self.t0 = None

    # --- servers -------------------------------------------------------
    def start_servers(self):
        # wsbridge:debug logs every upgrade and close with the client's port,
        # which the client logs too: a finding can be followed into the server.
        conf = "WSBridgeHistorySize 200\nLogLevel warn wsbridge:debug\n" + self.extra_conf
        if self.kind == "redis":
            # appendonly with fsync always: a restart, even kill -9, keeps
            # the bus (docs/redis.md); its files stay in the run's directory
            self.redis = RedisServer(persist=True, data_dir=os.path.join(self.out_dir, "redis"))
            self.redis.start()
            conf += f"WSBridgeBus {self.redis.url}\n"
            n_servers, children = 2, 2
        else:
            n_servers, children = 1, 4
        for _ in range(n_servers):
            # 100 threads a child: a killed child's clients fit in the others.
            self.servers.append(Apache(extra_conf=conf, children=children, threads=100).start())

    def stop_servers(self):
        for a in self.servers:
            a.stop()
        if self.redis:
            self.redis.stop()

    def ports(self):
        return [a.port for a in self.servers]

    def children(self, a):
        try:
            return a.child_pids()
        except (OSError, ValueError):
            return []

    def sample_rss(self, label):
        out = []
        for a in self.servers:
            try:
                ppid = a.pid()
            except (OSError, ValueError):
                continue
            kids = self.children(a)
            out.append({"parent": ppid, "parent_kb": rss_kb(ppid),
                        "children": len(kids), "children_kb": sum(rss_kb(p) for p in kids)})
        self.rss[label] = out
        return out

    # --- faults --------------------------------------------------------
    def note(self, what):
        t = time.monotonic() - self.t0
        self.faults.append((round(t, 1), what))
        log(f"[{self.kind} +{t:5.1f}s] {what}")

    async def graceful(self):
        a = random.choice(self.servers)
        await asyncio.to_thread(a.graceful)
        self.counts["restarts"] += 1
        self.note(f"graceful restart of :{a.port}")

    async def kill_child(self):
        a = random.choice(self.servers)
        kids = self.children(a)
        if not kids:
            return
        pid = random.choice(kids)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.counts["kills"] += 1
        self.note(f"kill -9 child {pid} of :{a.port}")

    async def hard_restart(self):
        # The shm run stops its only server, the bus with it; the redis run
        # stops one of two servers (the bus lives on in Redis).
        a = self.servers[0]
        t_stop = now_ms()
        await asyncio.to_thread(a.stop)
        if self.kind == "shm":
            self.stop_ms[self.epoch] = t_stop
            self.epoch += 1
        self.note(f"hard stop of :{a.port}")
        await asyncio.sleep(2)
        await asyncio.to_thread(a.start)
        self.counts["outages"] += 1
        self.note(f"start of :{a.port}")
        await asyncio.sleep(5)
        self.sample_rss("after-hard-restart")

    async def redis_restart(self):
        k = self.counts["redis_restarts"]
        sig = signal.SIGKILL if k % 2 else signal.SIGTERM
        await asyncio.to_thread(self.redis.stop, sig)
        self.note(f"redis stopped ({signal.Signals(sig).name})")
        await asyncio.sleep(2)
        await asyncio.to_thread(self.redis.start)
        self.counts["redis_restarts"] += 1
        self.counts["outages"] += 1
        self.note("redis started")

    def schedule(self):
        """[(t, coroutine function)] for this run's length: the nominal
        periods (30/45/60 s), shrunk for short runs so every kind occurs."""
        T = self.seconds
        scale = min(1.0, T / 180.0)
        plan = []
        on = self.kinds
        pg, pk, pr = max(10, 30 * scale), max(12, 45 * scale), max(15, 60 * scale)
        t = pg * 0.6
        while t < T - 4 and "graceful" in on:
            plan.append((t, self.graceful)); t += pg
        t = pk * 0.8
        while t < T - 4 and "kill" in on:
            plan.append((t, self.kill_child)); t += pk
        if "stop" in on:
            plan.append((T * 0.35, self.hard_restart))
        if self.kind == "redis" and "redis" in on:
            t = pr * 0.7
            while t < T - 4:
                plan.append((t, self.redis_restart)); t += pr
        plan.sort(key=lambda p: p[0])
        return plan

    async def faults_loop(self):
        for at, fn in self.schedule():
            delay = self.t0 + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await fn()
            except Exception as e:  # a fault that could not be made is reported, not fatal
                self.note(f"fault {fn.__name__} failed: {e!r}")

    # --- the run -------------------------------------------------------
    async def main(self, send_interval):
        prefix = f"chaos-{os.getpid()}"
        rooms = [f"{prefix}-r{k}" for k in range(self.n_rooms)]
        ports = self.ports()
        for i in range(self.n_clients):
            self.clients.append(Client(self, i, rooms[i % self.n_rooms], ports, send_interval))
        tasks = []
        for i, c in enumerate(self.clients):
            tasks.append(asyncio.create_task(c.run()))
            if i % 20 == 19:
                await asyncio.sleep(0.2)
        ok = await wait_for(lambda: all(c.joined_once for c in self.clients), SETTLE_TIMEOUT)
        if not ok:
            log(f"only {sum(c.joined_once for c in self.clients)} of {self.n_clients} clients joined")
        await asyncio.sleep(2)
        self.sample_rss("start")
        self.t0 = time.monotonic()
        log(f"[{self.kind}] {self.n_clients} clients in {self.n_rooms} rooms, {self.seconds:.0f} s of faults")
        for c in self.clients:
            c.sending = True
        await self.faults_loop()
        rest = self.t0 + self.seconds - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)
        for c in self.clients:
            c.sending = False
        log(f"[{self.kind}] faults over; waiting for every message to be acknowledged or failed")
        settled = await wait_for(lambda: all(c.settled() for c in self.clients), SETTLE_TIMEOUT)
        # Every member of a room must reach the room's last seq.
        converged = await wait_for(lambda: self.converged(rooms), 30, stable=1.0)
        self.sample_rss("end")
        log(f"[{self.kind}] settled={settled} converged={converged}; closing clients")
        for c in self.clients:
            c.stop()
        await asyncio.wait(tasks, timeout=20)
        for t in tasks:
            t.cancel()
        return {"settled": settled, "converged": converged, "rooms": rooms}

    def converged(self, rooms):
        for r in rooms:
            members = [c for c in self.clients if c.room == r]
            tops = {(c.epoch, c.last_seq) for c in members}
            if len(tops) != 1 or any(not c.connected for c in members):
                return False
        return True

    def error_logs(self):
        return [a.error_log() for a in self.servers]


async def wait_for(pred, timeout, stable=0.0):
    deadline = time.monotonic() + timeout
    since = None
    while time.monotonic() < deadline:
        if pred():
            since = since or time.monotonic()
            if time.monotonic() - since >= stable:
                return True
        else:
            since = None
        await asyncio.sleep(0.2)
    return False


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "?"


def write_doc(path, results, seconds):
    """Replaces the block between the chaos markers of `path` with this run."""
    begin, end = "<!-- chaos:begin -->", "<!-- chaos:end -->"
    with open(path) as f:
        text = f.read()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin} ... {end} block")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = (f"{begin}\nLast run: {when}, commit `{git_commit()}`, CHAOS_TIME={seconds:.0f} s "
             f"(`make chaos`).\n\n" + markdown_rows(results) + f"\n{end}")
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + block + tail)


def prune(top, keep):
    """Keeps the `keep` newest run directories (a 10-minute run logs ~50 MB)."""
    runs = sorted(d for d in os.listdir(top) if os.path.isdir(os.path.join(top, d)))
    for d in runs[:-keep]:
        shutil.rmtree(os.path.join(top, d), ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--time", type=float, default=float(os.environ.get("CHAOS_TIME", 600)),
                   help="seconds of faults over all runs (split evenly)")
    p.add_argument("--runs", default="shm,redis")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--rooms", type=int, default=5)
    p.add_argument("--interval", type=float, default=6.0, help="mean seconds between a client's messages")
    p.add_argument("--doc", help="write the result table into this file (docs/reliability.md)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--faults", default="graceful,kill,stop,redis",
                   help="the kinds of fault to make (to narrow a finding down)")
    p.add_argument("--conf", default="", help="more server config lines (e.g. 'LogLevel wsbridge:debug')")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    kinds = [k for k in args.runs.split(",") if k]
    per_run = args.time / len(kinds)
    top = os.path.join(ROOT, "build", "chaos")
    base = os.path.join(top, time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(base, exist_ok=True)
    prune(top, keep=10)
    log(f"chaos: runs {kinds}, {per_run:.0f} s each, seed {seed}, logs in {base}")
    results = []
    for kind in kinds:
        out = os.path.join(base, kind)
        os.makedirs(out, exist_ok=True)
        run = Run(kind, per_run, args.clients, args.rooms, out, args.faults,
                  args.conf.replace("\\n", "\n") + "\n" if args.conf else "")
        try:
            run.start_servers()
            info = asyncio.run(run.main(args.interval))
            logs = run.error_logs()
        finally:
            run.stop_servers()
        res = check(run, info, logs)
        res["seed"] = seed
        with open(os.path.join(out, "clients.jsonl"), "w") as f:
            for c in run.clients:
                f.write(json.dumps({"name": c.name, "room": c.room, "log": c.log,
                                    "msgs": [m.__dict__ for m in c.msgs]}) + "\n")
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump(res, f, indent=1)
        for i, text in enumerate(logs):
            with open(os.path.join(out, f"error-{i}.log"), "w") as f:
                f.write(text)
        results.append(res)
    print()
    print(table(results))
    bad = [r for r in results if r["problems"]]
    for r in bad:
        for line in r["problems"]:
            print(f"FAIL [{r['run']}] {line}")
    if args.doc:
        write_doc(args.doc, results, args.time)
    print(f"chaos: {'FAILED' if bad else 'ok'} (seed {seed}, logs in {base})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
