"""The worker reserve: WebSockets never take the website down.

On `make run`'s own configuration (2 children to start, 25 threads each,
MaxRequestWorkers 100; prefork: MaxRequestWorkers 150), 150 clients try to
connect: those over the limit get 503 + Retry-After at once, GET / keeps
answering in well under a second the whole time, the chat still delivers to
the connected ones, and the status counts the refusals by reason.
"""
import json
import threading
import time

from chatclient import http, publish, status_json
from harness import Apache, no_child_crash
from wsclient import WS, TEXT

CLIENTS = 150


class PageProbe(threading.Thread):
    """GET / every 100 ms on a new connection; keeps the slowest answer."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop_flag = port, threading.Event()
        self.worst, self.count, self.errors = 0.0, 0, []

    def run(self):
        deadline = time.time() + 120  # bounded whatever the test does
        while not self.stop_flag.is_set() and time.time() < deadline:
            t0 = time.time()
            try:
                status, _, body = http(self.port, "GET", "/", timeout=5)
                if status != 200 or b"<html" not in body.lower():
                    self.errors.append(f"GET / -> {status}")
            except Exception as e:  # a timeout is exactly what must not happen
                self.errors.append(f"GET / failed: {e!r}")
            self.worst = max(self.worst, time.time() - t0)
            self.count += 1
            self.stop_flag.wait(0.1)


def connect_one(port, i):
    """(WS, None) or (None, (why, seconds))."""
    t0 = time.time()
    try:
        return WS(port, path=f"/ws/chat?name=u{i}", timeout=10), None
    except AssertionError as e:
        return None, (str(e), time.time() - t0)
    except Exception as e:
        return None, (f"no answer: {e!r}", time.time() - t0)


def connect_many(port, n, rounds, target=None):
    """n clients connect at once; the refused ones come back after their
    Retry-After (1 s here), for at most `rounds` rounds, or until `target`
    are held. Returns (open WS list, every refusal seen)."""
    opened, refusals, waiting = [], [], list(range(n))
    for _ in range(rounds):
        if target is not None and len(opened) >= target:
            break
        still = []
        for i in waiting:
            w, refusal = connect_one(port, i)
            if w:
                opened.append(w)
            else:
                refusals.append(refusal)
                still.append(i)
        waiting = still
        if not waiting:
            break
        time.sleep(1.0)
    return opened, refusals


def drain_until(w, needle, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, op, payload, _ = w.recv_frame(timeout=deadline - time.time())
        if op == TEXT and needle in payload:
            return True
    return False


def check_reserve(mpm, limit_min, limit_max, rounds):
    a = Apache(mpm=mpm).start()
    probe = PageProbe(a.port)
    opened = []
    try:
        probe.start()
        # Where the limit is exact, retry until it is reached: a loaded
        # machine starts the MPM's last children slowly.
        target = limit_max if limit_min == limit_max else None
        opened, refused = connect_many(a.port, CLIENTS, rounds, target)
        for why, took in refused:
            assert "503" in why, f"{mpm}: a refused upgrade must be a 503: {why}"
            assert "retry-after" in why, f"{mpm}: 503 without Retry-After: {why}"
            assert took < 1.0, f"{mpm}: a refusal took {took:.2f}s (must be at once): {why}"
        assert limit_min <= len(opened) <= limit_max, \
            f"{mpm}: {len(opened)} WebSockets held, expected {limit_min}..{limit_max}"
        st = status_json(a.port)
        refusals = st["refused"]
        busy = refusals.get("worker_reserve", 0) + refusals.get("overloaded", 0)
        assert busy == len(refused), f"{mpm}: status counts {refusals}, clients saw {len(refused)} refusals"
        assert st["open"] == len(opened), f"{mpm}: status open {st['open']} != {len(opened)}"
        # The chat still delivers to every connected client.
        for w in opened:
            w.send_text(json.dumps({"type": "join", "room": "lobby"}))
        time.sleep(0.5)
        code, _ = publish(a.port, {"room": "lobby", "text": f"hello-{mpm}"})
        assert code == 202, code
        missing = [i for i, w in enumerate(opened) if not drain_until(w, f"hello-{mpm}".encode())]
        assert not missing, f"{mpm}: {len(missing)} connected clients got no message"
        probe.stop_flag.set()
        probe.join(10)
        assert not probe.errors, f"{mpm}: the website failed while WebSockets were held: {probe.errors[:5]}"
        assert probe.count >= 5, probe.count
        assert probe.worst < 1.0, f"{mpm}: GET / took {probe.worst:.2f}s while WebSockets were held"
        no_child_crash(a)
    finally:
        probe.stop_flag.set()
        for w in opened:
            try:
                w.sock.close()
            except OSError:
                pass
        a.stop()


def test_event_reserve_keeps_the_site_up():
    # 4 children x (25 - 4 reserved) = 84; mpm_event starts the other two
    # children while the first hold WebSockets, and the refused come back.
    check_reserve("event", 84, 84, rounds=60)


test_event_reserve_keeps_the_site_up.time_limit = 120


def test_worker_reserve_keeps_the_site_up():
    check_reserve("worker", 84, 84, rounds=60)


test_worker_reserve_keeps_the_site_up.time_limit = 120


def test_prefork_reserve_keeps_the_site_up():
    # MaxRequestWorkers 150 - 18 reserved = 132 at most; an upgrade that
    # would take the last idle child is refused too (prefork spawns at most
    # 32 children a second), so the clients get in over a few rounds.
    check_reserve("prefork", 100, 132, rounds=15)


test_prefork_reserve_keeps_the_site_up.time_limit = 120
