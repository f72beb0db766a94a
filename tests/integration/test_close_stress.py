"""Issue 16, "a close that went unanswered": thousands of short echo
connections, each ending with the client's close 1000, and the server's
close reply timed for every one (closestress.py: how, and how the bytes are
grouped into writes: pipelined with the handshake, the close in the same
write as the message, frames cut across writes).

Four runs: make run's MPM settings (2 children x 25 threads), 16
connections at a time and then one at a time, as a conformance client; one
whose children come and go (MinSpareThreads/MaxSpareThreads close together,
a load that rises and falls, MaxConnectionsPerChild), and make run's again
with graceful restarts mid-run.

What fails a test: a close never answered (none within 2 s, or EOF without
one), a reply slower than 1 s (the issue's bound), any other wrong answer
(a wrong echo, bytes after the close, no FIN after it); and replies slower
than 100 ms beyond a small tolerance: the latency is taken from kernel
receive timestamps, so the client's own event loop is not in it, but the
server's threads share 2 cores with whatever else runs (load averages of 20
and more while these tests were written), and a stall of the machine slows
every connection open at that moment, up to the concurrency at once. So the
tolerance counts stalls, not connections: at most SLOW_EPISODES groups of
slow replies (replies less than EPISODE_GAP_S apart are one group). A bug
like the issue's, one connection in thousands at random times, shows as
misses or as many separate groups. A stopping child answers with (or starts
with) close 1001, and a full or restarting one refuses with 503: precise
answers, allowed where children stop or fill up."""
import asyncio
import re
import subprocess
import time

import closestress as cs
from harness import Apache, no_child_crash
from run import time_limit

SLOW_S = 0.100            # the bound for a close reply
LATE_S = 1.0              # never tolerated
SLOW_EPISODES = 3         # stalls tolerated per run (replies between SLOW_S and LATE_S)
EPISODE_GAP_S = 0.5       # slow replies closer than this in time belong to one stall


def apache_log_time(line):
    """The time of an error-log line ([Thu Nov 26 18:04:45.598411 2026]), or None."""
    m = re.match(r"\[\w+ (\w+ \d+ [\d:]+)\.(\d+) (\d+)\]", line)
    if not m:
        return None
    t = time.mktime(time.strptime(m.group(1) + " " + m.group(3), "%b %d %H:%M:%S %Y"))
    return t + int(m.group(2)) / 1e6


def log_lines_near(apache, when, window=1.5):
    """Error-log lines within `window` s of any of the times in `when`,
    leaving out the 503 refusals (one line each, many under load)."""
    out = []
    for line in apache.error_log().splitlines():
        t = apache_log_time(line)
        if t is None or "refused upgrade" in line:
            continue
        # The log is in local time, the records in UTC seconds since the epoch.
        if any(abs(t - w) <= window for w in when):
            out.append(line)
    return out


def stalls(slow):
    """How many groups the slow replies form in time."""
    groups, last = 0, None
    for t in sorted(r["t"] for r in slow):
        if last is None or t - last > EPISODE_GAP_S:
            groups += 1
        last = t
    return groups


def check(apache, records, elapsed, allowed=("ok",), min_ok=0):
    """Prints the run's figures and fails as the module's docstring says;
    `allowed`: prefixes of the results that are not failures."""
    lines = cs.summary(records, elapsed)
    print("\n".join(lines))
    answered = [r for r in records if r["latency"] is not None]
    bad = [r for r in records if not r["result"].startswith(allowed)]
    late = [r for r in answered if r["latency"] > LATE_S]
    slow = [r for r in answered if SLOW_S < r["latency"] <= LATE_S]
    problems = []
    if bad:
        problems.append(f"{len(bad)} connections ended wrongly")
    if late:
        problems.append(f"{len(late)} close replies slower than {LATE_S:g} s")
    episodes = stalls(slow)
    if slow:
        print(f"{len(slow)} replies slower than {SLOW_S * 1000:g} ms in {episodes} stall(s)")
    if episodes > SLOW_EPISODES:
        problems.append(f"{len(slow)} close replies slower than {SLOW_S * 1000:g} ms in {episodes} "
                        f"separate stalls (tolerated: {SLOW_EPISODES})")
    ok = sum(1 for r in records if r["result"] == "ok")
    if ok < min_ok:
        problems.append(f"only {ok} connections completed normally (expected at least {min_ok})")
    listed = (bad + late + slow)[:40]
    for r in listed:
        lat = "-" if r["latency"] is None else "%.1f ms" % (r["latency"] * 1000)
        print(f"  {cs.stamp(r['t'])} UTC #{r['i']} [{r['mode']}] {r['result']} (close reply {lat})")
    if problems:
        near = log_lines_near(apache, [r["t"] for r in listed])
        print("error log around them:\n" + "\n".join(near[-60:]))
        raise AssertionError("; ".join(problems))
    no_child_crash(apache)


def run(apache, count, concurrency, **kw):
    return asyncio.run(cs.run(apache.port, count, concurrency, **kw))


@time_limit(150)
def test_close_replies_with_make_run_settings():
    # 2 children x 25 threads, as make run: 16 at a time stay under the
    # worker reserve's 21 WebSockets per child, so every upgrade succeeds.
    with Apache() as a:
        records, elapsed = run(a, 8000, 16, deadline_s=90)
        assert len(records) >= 2000, f"only {len(records)} connections in {elapsed:.0f} s"
        check(a, records, elapsed)


@time_limit(90)
def test_close_replies_one_connection_at_a_time():
    # As a conformance client runs: one connection after the other (the
    # issue's rate was one miss in about 3,000).
    with Apache() as a:
        records, elapsed = run(a, 4000, 1, deadline_s=45)
        assert len(records) >= 1500, f"only {len(records)} connections in {elapsed:.0f} s"
        check(a, records, elapsed)


CHURN = """
StartServers 1
MinSpareThreads 8
MaxSpareThreads 16
MaxConnectionsPerChild 1500
WSBridgeReserveWorkers 1
"""


@time_limit(150)
def test_close_replies_while_children_come_and_go():
    # 8 threads per child, spare threads kept between 8 and 16: a load that
    # swings between 24 and 2 connections makes the MPM start children and
    # stop idle ones every few seconds; MaxConnectionsPerChild retires busy
    # ones too.
    with Apache(extra_conf=CHURN, threads=8, max_workers=96) as a:
        seen = set(a.child_pids())

        def sample():
            for _ in range(60):
                seen.update(a.child_pids())
                time.sleep(0.25)

        def schedule(t):
            return 24 if int(t / 1.5) % 2 == 0 else 2

        records, elapsed = run(a, 8000, 24, schedule=schedule, events=[(0, sample)], deadline_s=90)
        print(f"child processes seen: {len(seen)}")
        assert len(seen) >= 4, f"children did not come and go: {sorted(seen)}"
        assert len(records) >= 2000, f"only {len(records)} connections in {elapsed:.0f} s"
        check(a, records, elapsed, allowed=("ok", "close 1001", "server closed first", "refused: HTTP/1.1 503"),
              min_ok=len(records) // 2)


@time_limit(150)
def test_close_replies_across_graceful_restarts():
    with Apache() as a:
        def graceful():
            subprocess.run(["apache2", "-f", a.dir + "/httpd.conf", "-k", "graceful"], check=True,
                           capture_output=True, timeout=30)

        records, elapsed = run(a, 6000, 16, events=[(1.5, graceful), (4.0, graceful)], deadline_s=90)
        assert a.error_log().count("resuming normal operations") >= 3, "the restarts did not happen"
        assert len(records) >= 2000, f"only {len(records)} connections in {elapsed:.0f} s"
        check(a, records, elapsed, allowed=("ok", "close 1001", "server closed first", "refused: HTTP/1.1 503"),
              min_ok=len(records) // 2)
