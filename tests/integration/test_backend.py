"""WSBridgeApp backend against real PHP (php-fpm through mod_proxy_fcgi), run
as sub-requests of the WebSocket's own Apache: events, GRIP control
messages, publishing across children, failures, trust, limits.

The backend is tests/backend/echo_backend.php, written for Pushpin and used
unchanged (test_backend_pushpin.py runs it behind the real Pushpin)."""
import asyncio
import base64
import json
import os
import tempfile
import time

import websockets

from backend_support import echo_backend_conf, grip_sig
from chatclient import http, status_json
from harness import BASE, ROOT, Apache, no_child_crash
from run import time_limit

KEY = "test-key-0123456789abcdef"
PHP_DIR = os.path.join(ROOT, "tests", "integration", "php")
CGI_DIR = os.path.join(ROOT, "tests", "integration", "cgi")


def backend_conf(timeout="10s"):
    return echo_backend_conf(f"WSBridgeBackendSigKey {KEY}", f"WSBridgeBackendTimeout {timeout}",
                             "WSBridgeMaxMessageSize 2M") + f"""
Alias /tp/ "{PHP_DIR}/"
<Directory "{PHP_DIR}">
  Require all granted
</Directory>
<Location /ws/trust>
  SetHandler wsbridge
  WSBridgeApp backend
  WSBridgeBackend /tp/trust.php
</Location>
<Location /ws/nobackend>
  SetHandler wsbridge
  WSBridgeApp backend
  WSBridgeBackend /tp/does-not-exist.php
</Location>
<Location /ws/publish>
  WSBridgeMaxMessageSize 2M
</Location>
# The same backend through mod_proxy_http (a ProxyPass of a local path, as a
# remote backend would be reached) and a CGI script through mod_cgid.
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
LoadModule cgid_module /usr/lib/apache2/modules/mod_cgid.so
ScriptSock "{{dir}}/cgid.sock"
ProxyPass /viaproxy/ http://127.0.0.1:{{port}}/tb/
ScriptAlias /cgi/ "{CGI_DIR}/"
<Directory "{CGI_DIR}">
  Require all granted
</Directory>
<Location /ws/viaproxy>
  SetHandler wsbridge
  WSBridgeApp backend
  WSBridgeBackend /viaproxy/echo_backend.php
  WSBridgeMaxMessageSize 2M
</Location>
<Location /ws/cgi>
  SetHandler wsbridge
  WSBridgeApp backend
  WSBridgeBackend /cgi/echo.py
</Location>
"""


class Env:
    apache = None
    log = None


def setup_module():
    os.makedirs(BASE, exist_ok=True)  # the first suite of a fresh clone
    fd, Env.log = tempfile.mkstemp(prefix="backend-", suffix=".log", dir=BASE)
    os.close(fd)
    os.chmod(Env.log, 0o666)
    a = Apache(children=4, threads=64, max_workers=256, env={"PHP": "1", "WSB_BACKEND_LOG": Env.log})
    conf = backend_conf(timeout="2s").replace("{dir}", a.dir).replace("{port}", str(a.port))
    path = os.path.join(a.dir, "extra.conf")
    with open(path, "w") as f:
        f.write(conf)
    a.env["EXTRA_CONF"] = path
    Env.apache = a.start()


def teardown_module():
    if Env.apache:
        Env.apache.stop()


def url(path):
    return f"ws://127.0.0.1:{Env.apache.port}{path}"


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def requests_logged():
    with open(Env.log) as f:
        return [json.loads(line) for line in f if line.strip()]


def publish(body):
    status, _, resp = http(Env.apache.port, "POST", "/ws/publish", json.dumps(body),
                           {"Content-Type": "application/json"})
    return status, resp


def verify_jwt(token, key):
    head, claims = grip_sig(token, key)
    assert head["alg"] == "HS256"
    return claims


def test_echo_text_binary_and_the_backends_close():
    async def go():
        async with websockets.connect(url("/ws/tb")) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01\xff")
            assert await ws.recv() == b"\x00\x01\xff"
            await ws.send("close")
            try:
                await asyncio.wait_for(ws.recv(), 5)
                raise AssertionError("expected the backend's close")
            except websockets.ConnectionClosed:
                pass
            assert ws.close_code == 4000 and ws.close_reason == "bye", (ws.close_code, ws.close_reason)
    run(go())


def test_mod_proxy_http_and_cgi_backends_read_the_body_and_nothing_leaks():
    big = "y" * 300000

    async def go(path, prefix):
        async with websockets.connect(url(path), max_size=4 << 20) as ws:
            for msg in ("one", "two", big):
                await ws.send(msg)
                assert await ws.recv() == prefix + msg, path
            # nothing else arrives: no headers or bodies of the sub-requests
            try:
                extra = await asyncio.wait_for(ws.recv(), 0.5)
                raise AssertionError(f"{path}: unexpected frame {extra[:80]!r}")
            except asyncio.TimeoutError:
                pass
    run(go("/ws/viaproxy", ""))
    run(go("/ws/cgi", "cgi:"))


def test_requests_carry_the_pushpin_headers_and_the_query_string():
    open(Env.log, "w").close()

    async def go():
        hdrs = {"Meta-Evil": "1", "Grip-Sig": "forged", "Connection-Id": "forged", "X-Custom": "kept"}
        async with websockets.connect(url("/ws/tb?room=42&x=%20y"), extra_headers=hdrs) as ws:
            await ws.send("meta:user=alice")
            # a round trip, so that "meta?" goes in a later request (events
            # sent together go in one request, which carries the Meta-* of
            # the answers before it)
            await ws.send("sync")
            assert await ws.recv() == "sync"
            await ws.send("meta?")
            got = json.loads(await ws.recv())
            assert got == {"User": "alice"} or {k.lower(): v for k, v in got.items()} == {"user": "alice"}, got
    run(go())
    reqs = requests_logged()
    assert len(reqs) >= 2, reqs
    ids = set()
    for req in reqs:
        h = {k.lower(): v for k, v in req["headers"]}
        assert req["method"] == "POST"
        # REQUEST_URI is the client's (as behind Pushpin, which forwards the
        # client's path); the script is the backend's.
        assert req["uri"] == "/ws/tb?room=42&x=%20y", req["uri"]
        assert h["content-type"] == "application/websocket-events"
        assert h["accept"] == "application/websocket-events"
        assert h["sec-websocket-extensions"] == "grip"
        assert h.get("x-custom") == "kept"
        assert "meta-evil" not in h, "a client's Meta-* header reached the backend"
        assert h["grip-sig"] != "forged"
        claims = verify_jwt(h["grip-sig"], KEY)
        assert claims["exp"] > time.time() and claims.get("iss"), claims
        assert h["connection-id"] != "forged"
        ids.add(h["connection-id"])
    assert len(ids) == 1, f"one Connection-Id per connection: {ids}"
    first = base64.b64decode(reqs[0]["body_b64"])
    assert first.startswith(b"OPEN\r\n"), first
    # the backend set Meta-User: every later request carries it
    later = {k.lower(): v for k, v in reqs[-1]["headers"]}
    assert later.get("meta-user") == "alice", later


def test_trust_variable_only_on_bridged_requests():
    async def go():
        async with websockets.connect(url("/ws/trust")) as ws:
            return await ws.recv()
    assert run(go()) == "bridged=1"
    # the same script requested straight by a client: no variable
    status, _, body = http(Env.apache.port, "POST", "/tp/trust.php", "TEXT 1\r\nx\r\n",
                           {"Content-Type": "application/websocket-events", "WSBRIDGE": "1"})
    assert status == 200 and b"bridged=0" in body, (status, body)


def test_one_megabyte_messages_both_ways():
    big = os.urandom(1 << 20)
    text = "x" * (1 << 20)

    async def go():
        async with websockets.connect(url("/ws/tb"), max_size=4 << 20) as ws:
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send(text)
            assert await ws.recv() == text
    run(go())


def test_subscribe_and_grip_publish_across_children():
    n = 24

    async def go():
        conns = [await websockets.connect(url("/ws/tb")) for _ in range(n)]
        try:
            for ws in conns:
                await ws.send("sub:news")
            # the subscribe is applied when the backend answered; a round trip shows it
            for ws in conns:
                await ws.send("ping-me")
                assert await ws.recv() == "ping-me"
            status, resp = publish({"items": [
                {"channel": "news", "formats": {"ws-message": {"content": "first"}}},
                {"channel": "other", "formats": {"ws-message": {"content": "not for us"}}},
                {"channel": "news", "formats": {"http-stream": {"content": "ignored"}}},
                {"channel": "news", "formats": {"ws-message": {"content-bin": base64.b64encode(b"\x01\x02").decode()}}},
            ]})
            assert status == 200 and resp == b"Published\n", (status, resp)
            for ws in conns:
                assert await asyncio.wait_for(ws.recv(), 5) == "first"
                assert await asyncio.wait_for(ws.recv(), 5) == b"\x01\x02"
            # unsubscribe one; the rest get the next
            await conns[0].send("unsub:news")
            await conns[0].send("sync")
            assert await conns[0].recv() == "sync"
            status, _ = publish({"items": [{"channel": "news", "formats": {"ws-message": {"content": "second"}}}]})
            assert status == 200
            for ws in conns[1:]:
                assert await asyncio.wait_for(ws.recv(), 5) == "second"
            await conns[0].send("after")
            assert await conns[0].recv() == "after", "an unsubscribed connection got a publish"
            # the publisher's close
            status, _ = publish({"items": [{"channel": "news", "formats": {"ws-message": {
                "action": "close", "code": 4100, "reason": "channel closed"}}}]})
            assert status == 200
            for ws in conns[1:]:
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                    raise AssertionError("expected a close")
                except websockets.ConnectionClosed:
                    assert ws.close_code == 4100, ws.close_code
        finally:
            for ws in conns:
                await ws.close()
    run(go())
    pids = {c["pid"] for c in status_json(Env.apache.port)["children"] if c.get("backend", {}).get("accepted")}
    assert len(pids) >= 2, f"the clients should have spread over several children: {pids}"


def test_a_slow_backend_slows_only_its_own_connection():
    async def go():
        slow = await websockets.connect(url("/ws/tb"))
        others = [await websockets.connect(url("/ws/tb")) for _ in range(8)]
        try:
            await slow.send("fail:sleep=1")  # under the 2 s timeout: answered, late
            t0 = time.time()
            worst = 0.0
            while time.time() - t0 < 0.9:
                for ws in others:
                    t = time.time()
                    await ws.send("quick")
                    assert await asyncio.wait_for(ws.recv(), 5) == "quick"
                    worst = max(worst, time.time() - t)
            assert worst < 0.5, f"another connection waited {worst:.2f}s behind a slow backend request"
            assert await asyncio.wait_for(slow.recv(), 5) == "slept"
        finally:
            for ws in [slow] + others:
                await ws.close()
    run(go())


def test_bad_publish_bodies_are_400():
    for body in ({"items": "nope"}, {"items": [{"channel": "x"}]},
                 {"items": [{"channel": "", "formats": {"ws-message": {"content": "x"}}}]},
                 {"items": [{"channel": "x", "formats": {"ws-message": {"content-bin": "***"}}}]}):
        status, resp = publish(body)
        assert status == 400, (body, status, resp)


def expect_close(path, send, code, timeout=10):
    async def go():
        async with websockets.connect(url(path)) as ws:
            await ws.send(send)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout)
            except websockets.ConnectionClosed:
                return ws.close_code
    got = run(go())
    assert got == code, f"{send}: closed with {got}, expected {code}"


@time_limit(60)
def test_backend_failures_close_with_1011_and_are_logged():
    before = status_json(Env.apache.port)
    expect_close("/ws/tb", "fail:500", 1011)
    expect_close("/ws/tb", "fail:malformed", 1011)
    expect_close("/ws/tb", "fail:ctype", 1011)
    t0 = time.time()
    expect_close("/ws/tb", "fail:sleep=4", 1011)  # WSBridgeBackendTimeout 2s here
    assert time.time() - t0 < 4.5, "the timeout did not cut the request short"
    log = Env.apache.error_log()
    assert "backend /tb/echo_backend.php" in log and "backend failed" in log, log[-2000:]
    after = status_json(Env.apache.port)
    fails = after["backend"]["failures"]
    assert sum(fails.values()) - sum(before["backend"]["failures"].values()) >= 4, (before["backend"], fails)
    assert fails["timeout"] >= 1, fails
    no_child_crash(Env.apache)


def test_open_refused_by_the_backend_reaches_the_client():
    raw_status, headers, body = http(Env.apache.port, "GET", "/ws/tb?reject=403", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    assert raw_status == 403, (raw_status, body)
    assert headers.get("x-rejected-by") == "echo_backend", headers
    assert b"rejected by backend" in body
    # a backend path that does not exist: the client gets an error, not a 101
    raw_status, _, body = http(Env.apache.port, "GET", "/ws/nobackend", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    assert raw_status in (404, 502), (raw_status, body)


def test_ping_goes_to_the_backend_which_answers_pong():
    async def go():
        async with websockets.connect(url("/ws/tb"), ping_interval=None) as ws:
            waiter = await ws.ping(b"hi")
            await asyncio.wait_for(waiter, 5)
    run(go())


@time_limit(120)
def test_two_hundred_connections():
    async def connect(i):
        # A child whose threads are taken (worker reserve) answers 503 at
        # once: the client comes back, as a page's reconnect would.
        for attempt in range(50):
            try:
                return await websockets.connect(url(f"/ws/tb?i={i}"), open_timeout=30)
            except websockets.InvalidStatusCode as e:
                if e.status_code != 503:
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("still 503 after 50 tries")

    async def one(i):
        ws = await connect(i)
        try:
            await ws.send(f"m{i}")
            assert await asyncio.wait_for(ws.recv(), 30) == f"m{i}"
            await asyncio.sleep(0.5)  # all held at once for a moment
        finally:
            await ws.close()

    async def go():
        await asyncio.gather(*(one(i) for i in range(200)))
    run(go(), timeout=110)
    no_child_crash(Env.apache)


@time_limit(60)
def test_graceful_restart_closes_with_1001_and_tells_the_backend():
    open(Env.log, "w").close()
    old_children = Env.apache.child_pids()

    async def go():
        async with websockets.connect(url("/ws/tb")) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            Env.apache.graceful()
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                return ws.close_code
    assert run(go()) == 1001
    time.sleep(1)
    bodies = [base64.b64decode(r["body_b64"]) for r in requests_logged()]
    assert any(b.startswith(b"CLOSE") for b in bodies), bodies
    # and it still works after the restart
    async def again():
        async with websockets.connect(url("/ws/tb")) as ws:
            await ws.send("after")
            return await ws.recv()
    deadline = time.time() + 10
    while True:
        try:
            assert run(again()) == "after"
            break
        except (OSError, websockets.InvalidStatusCode):
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    # The old child exits once its sessions closed; it must not crash then
    # (mod_proxy shuts its pooled backend connections down at child exit).
    deadline = time.time() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in old_children) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    no_child_crash(Env.apache)
