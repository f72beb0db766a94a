"""WSBridgeMaxConnectionsPerIP through a real Apache (README, "Per-client
limits"): one count per client address over every child; the upgrade over
it gets 429 + Retry-After and a rate-limited error-log line; closing gives
places back; a child killed with SIGKILL gives its places back once the MPM
has reaped it; behind mod_remoteip the forwarded client is counted, but only
from a trusted proxy; every app (echo, chat, backend, Pusher) counts; the
status shows it all. And the floods a client can make from one connection
(chat join/leave) are cut by the chat rate limit, which the status counts."""
import json
import os
import re
import signal
import socket
import time

from chatclient import http, status_json
from harness import Apache, configtest, no_child_crash
from run import time_limit
from wsclient import CLOSE, TEXT, WS, accept_for, close_code, handshake_request

LIMIT = 5
# 4 threads per child, none kept back: a child whose threads all hold
# WebSockets stops accepting, so LIMIT connections always span 2+ children.
EXTRA = f"""
WSBridgeMaxConnectionsPerIP {LIMIT}
WSBridgeReserveWorkers 0
"""


def pusher_key(a):
    with open(os.path.join(a.dir, "pusher.env")) as f:
        return re.search(r"PUSHER_APP_KEY=(\S+)", f.read()).group(1)


class Upgrade:
    """One upgrade from a chosen source address; keeps the socket on a 101."""

    def __init__(self, port, path="/ws/echo", src="127.0.0.1", headers=None, timeout=10.0):
        raw, key = handshake_request(path=path, extra=headers)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
        self.sock.sendall(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, self.body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if self.status == 101:
            assert self.headers.get("sec-websocket-accept") == accept_for(key), self.headers
        else:
            # The refusal's text body (Content-Length) may come after the head.
            want = int(self.headers.get("content-length", "0"))
            while len(self.body) < want:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.body += chunk
            self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_ok(port, n, retries=20, **kw):
    """n upgrades that must succeed (a 503 from a child whose threads are
    all busy is retried: that is the worker reserve, not this limit)."""
    held = []
    for _ in range(n):
        for _attempt in range(retries):
            u = Upgrade(port, **kw)
            if u.status != 503:
                break
            time.sleep(0.3)
        assert u.status == 101, f"upgrade {len(held) + 1} of {n}: {u.status} {u.body!r}"
        held.append(u)
    return held


def refused_429(u):
    assert u.status == 429, f"expected 429, got {u.status} {u.body!r}"
    assert u.headers.get("retry-after", "").isdigit(), u.headers
    return u.body.decode()


def close_all(held):
    for u in held:
        u.close()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def open_by_child(port, total):
    """{pid: open WebSockets} once the children's figures add up to `total`
    (a session counts itself open just after its 101)."""
    def settled():
        by = {c["pid"]: sum(c[app]["open"] for app in ("echo", "chat", "backend", "pusher"))
              for c in status_json(port)["children"]}
        return by if sum(by.values()) == total else None
    return wait_for(settled, 10, f"{total} sessions open in the children's figures")


@time_limit(90)
def test_limit_counts_every_child_and_gives_places_back():
    a = Apache(extra_conf=EXTRA, children=2, threads=4).start()
    held = []
    try:
        held = open_ok(a.port, LIMIT)
        by_child = open_by_child(a.port, LIMIT)
        assert len([n for n in by_child.values() if n]) >= 2, by_child
        first = time.time()
        why = refused_429(Upgrade(a.port))
        assert "127.0.0.1" in why and "WSBridgeMaxConnectionsPerIP 5" in why, why
        # Another address is not affected.
        other = open_ok(a.port, 1, src="127.0.0.2")
        # A flood of refusals writes one log line per 10 s, not one per refusal.
        for _ in range(20):
            refused_429(Upgrade(a.port))
        assert a.wait_log("refused a WebSocket of 127.0.0.1 with 429", 5), a.error_log()[-2000:]
        lines = a.error_log().count("with 429: it has")
        assert 1 <= lines <= 1 + int((time.time() - first) // 10), a.error_log()[-3000:]
        st = status_json(a.port)
        assert st["refused"]["per_ip"] == 21, st["refused"]
        p = st["per_ip"]
        assert p["limit"] == LIMIT and p["busiest"] == LIMIT and p["addresses"] == 2, p
        assert p["connections"] == LIMIT + 1 and p["untracked"] == 0, p
        # Closing two gives two places back (the sessions end on their own
        # threads: wait for it), and no more than two.
        close_all(held[:2])
        held = held[2:]
        wait_for(lambda: status_json(a.port)["per_ip"]["busiest"] == LIMIT - 2, 10, "two places given back")
        held += open_ok(a.port, 2)
        refused_429(Upgrade(a.port))
        _, _, prom = http(a.port, "GET", "/ws/status?format=prometheus")
        prom = prom.decode()
        assert 'wsbridge_upgrades_refused_total{reason="per_ip"} 22' in prom, prom
        assert "wsbridge_per_ip_limit 5" in prom and "wsbridge_per_ip_busiest 5" in prom, prom
        close_all(other)
        no_child_crash(a)
    finally:
        close_all(held)
        a.stop()


@time_limit(90)
def test_every_app_counts_and_a_killed_child_gives_its_places_back():
    a = Apache(extra_conf=EXTRA, children=2, threads=4, env={"PHP": "1"}).start()
    held = []
    try:
        key = pusher_key(a)
        held = open_ok(a.port, 1, path="/ws/echo") + open_ok(a.port, 1, path="/ws/chat") + \
            open_ok(a.port, 1, path=f"/app/{key}?protocol=7") + open_ok(a.port, 1, path="/ws/php") + \
            open_ok(a.port, 1, path="/ws/echo")
        for path in ("/ws/echo", "/ws/chat", f"/app/{key}?protocol=7", "/ws/php"):
            refused_429(Upgrade(a.port, path=path))
        st = status_json(a.port)
        assert st["per_ip"]["connections"] == LIMIT, st["per_ip"]
        # SIGKILL a child that holds some: it can never give them back itself.
        victim, lost = next((pid, n) for pid, n in open_by_child(a.port, LIMIT).items() if n)
        os.kill(victim, signal.SIGKILL)
        # Once Apache has reaped it (its maintenance runs every second) the
        # count is back to the survivors, and their places are usable again.
        wait_for(lambda: status_json(a.port)["per_ip"]["connections"] == LIMIT - lost, 15,
                 f"the killed child's {lost} places given back")
        held += open_ok(a.port, lost)
        refused_429(Upgrade(a.port))
        assert status_json(a.port)["per_ip"]["reclaimed"] >= lost
    finally:
        close_all(held)
        a.stop()


REMOTEIP = """
LoadModule remoteip_module /usr/lib/apache2/modules/mod_remoteip.so
RemoteIPHeader X-Forwarded-For
RemoteIPTrustedProxy 127.0.0.2
WSBridgeMaxConnectionsPerIP 2
"""


@time_limit(60)
def test_forwarded_clients_are_counted_only_behind_a_trusted_proxy():
    a = Apache(extra_conf=REMOTEIP).start()
    held = []
    try:
        def via(src, client):
            return dict(src=src, headers={"X-Forwarded-For": client})

        # 127.0.0.2 is the trusted proxy: each forwarded client has its own count.
        held += open_ok(a.port, 2, **via("127.0.0.2", "203.0.113.5"))
        why = refused_429(Upgrade(a.port, **via("127.0.0.2", "203.0.113.5")))
        assert "203.0.113.5" in why, why
        held += open_ok(a.port, 2, **via("127.0.0.2", "203.0.113.6"))
        # IPv6 clients count by /64.
        held += open_ok(a.port, 1, **via("127.0.0.2", "2001:db8:1:2::1"))
        held += open_ok(a.port, 1, **via("127.0.0.2", "2001:db8:1:2::abcd"))
        why = refused_429(Upgrade(a.port, **via("127.0.0.2", "2001:db8:1:2:ffff::9")))
        assert "2001:db8:1:2::/64" in why, why
        held += open_ok(a.port, 1, **via("127.0.0.2", "2001:db8:1:3::1"))
        # 127.0.0.1 is not trusted: its header is ignored, the peer counts.
        held += open_ok(a.port, 1, **via("127.0.0.1", "198.51.100.1"))
        held += open_ok(a.port, 1, **via("127.0.0.1", "198.51.100.2"))
        why = refused_429(Upgrade(a.port, **via("127.0.0.1", "198.51.100.3")))
        assert "127.0.0.1" in why and "198.51.100" not in why, why
        p = status_json(a.port)["per_ip"]
        assert p["addresses"] == 5 and p["connections"] == 9, p
    finally:
        close_all(held)
        a.stop()


def test_bad_values_fail_the_configtest():
    for value in ("-1", "abc", "10x", "1000001", "1.5"):
        ok, out = configtest(f"WSBridgeMaxConnectionsPerIP {value}\n")
        assert not ok, f"{value} accepted:\n{out}"
        assert f"WSBridgeMaxConnectionsPerIP: '{value}' must be a whole number from 0 to 1000000" in out, out
    ok, out = configtest("<Location /x>\n  WSBridgeMaxConnectionsPerIP 10\n</Location>\n")
    assert not ok and "WSBridgeMaxConnectionsPerIP" in out and "not allowed in <Location>" in out, out
    for good in ("0", "off", "1", "64", "1000000"):
        ok, out = configtest(f"WSBridgeMaxConnectionsPerIP {good}\n")
        assert ok, f"{good} refused:\n{out}"


@time_limit(60)
def test_default_is_a_quarter_of_the_capacity_at_least_64():
    # PER_IP=default: instance.sh leaves the directive out.
    for threads, in ((25,), (100,)):
        a = Apache(threads=threads, env={"PER_IP": "default"}).start()
        try:
            st = status_json(a.port)
            cap = st["capacity"]["max_connections"]
            assert st["per_ip"]["limit"] == max(64, cap // 4), (st["per_ip"], cap)
            assert a.wait_log("WebSockets per client address", 5), a.error_log()[-2000:]
        finally:
            a.stop()


def join_leave_flood(w, rounds):
    for i in range(rounds):
        w.send_text(json.dumps({"type": "join", "room": "flood"}))
        w.send_text(json.dumps({"type": "leave", "room": "flood"}))


@time_limit(60)
def test_a_join_leave_flood_is_cut_by_the_chat_rate_limit():
    # The per-address limit bounds how many connections one client holds;
    # what one connection may send is WSBridgeRateLimit's (default 20/s,
    # burst 40; 10 refusals in a row close with 1008).
    a = Apache(extra_conf=EXTRA).start()
    try:
        w = WS(a.port, path="/ws/chat?name=flooder", timeout=10)
        bystander = WS(a.port, path="/ws/chat?name=calm", timeout=10)
        join_leave_flood(w, 200)
        limited, code = 0, None
        deadline = time.time() + 20
        while time.time() < deadline:
            _, op, payload, _ = w.recv_frame(timeout=deadline - time.time())
            if op == TEXT and b"rate-limited" in payload:
                limited += 1
            if op == CLOSE:
                code = close_code(payload)[0]
                break
        assert code == 1008, f"flood not cut: close {code}, {limited} rate-limited replies"
        assert limited >= 10, limited
        w.close(1008)  # the close handshake ends the session, then it is counted
        chat = wait_for(lambda: (lambda c: c if c["closes"].get("1008") else None)(status_json(a.port)["apps"]["chat"]),
                        10, "the 1008 close counted")
        assert chat["rate_limited"] >= limited, chat
        _, _, prom = http(a.port, "GET", "/ws/status?format=prometheus")
        assert re.search(rb'wsbridge_rate_limited_total\{app="chat"\} [1-9]', prom), prom
        # The bystander's connection is untouched.
        bystander.send_text(json.dumps({"type": "join", "room": "calm"}))
        deadline = time.time() + 10
        while True:
            _, op, payload, _ = bystander.recv_frame(timeout=max(0.1, deadline - time.time()))
            if op == TEXT and b'"calm"' in payload:
                break
        bystander.close()
        no_child_crash(a)
    finally:
        a.stop()


def test_the_status_page_names_the_refusal():
    a = Apache(extra_conf=EXTRA).start()
    try:
        status, _, body = http(a.port, "GET", "/ws/status?asset=status.js")
        assert status == 200, status
        assert b'per_ip: ["429", "WSBridgeMaxConnectionsPerIP"]' in body, body[:200]
        assert b"renderPerIp" in body and b"rate_limited" in body
    finally:
        a.stop()
