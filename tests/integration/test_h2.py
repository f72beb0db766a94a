"""WebSockets over HTTP/2 (RFC 8441) through mod_http2: Protocols h2 http/1.1
and H2WebSockets on on the TLS listener (instance.sh H2=1). mod_http2 turns
the extended CONNECT into an internal GET with Upgrade headers and its own
Sec-WebSocket-Key, runs it on a secondary connection (c2) and turns the
module's 101 into a 200; the session then reads the stream through the c2's
input filter (polling the pipe mod_http2 signals input on) and writes into
its output beam. Everything that works on ws:// must work here: echo, the
close codes of bad frames, limits, chat with HTTP/1.1 clients, Pusher, the
graceful restart's 1001, and several WebSockets on one connection next to
plain requests."""
import json
import os
import threading
import time

from h2client import H2Conn, StreamRefused
from harness import Apache, no_child_crash, shared_apache
from run import time_limit
from wsclient import (BINARY, CONT, PING, PONG, TEXT, WS, encode_frame, ws_connect_retry)

EXTRA = """
LogLevel warn wsbridge:debug
<Location /ws/small>
  SetHandler wsbridge
  WSBridgeApp echo
  WSBridgeMaxMessageSize 1K
</Location>
<Location /ws/secret-chat>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeSecret h2-test-secret-0123456789
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, ssl=True, env={"H2": "1"})


def h2conn():
    return H2Conn(apache.ssl_port)


def status():
    c = h2conn()
    try:
        code, _, body = c.get("/ws/status")
        assert code == 200, (code, body[:200])
        return json.loads(body)
    finally:
        c.close()


def expect_failure(ws, code, what):
    """One close frame with `code`, nothing after it, and the server ends the stream."""
    fin, op, payload, rsv = ws.recv_frame(timeout=5)
    assert op == 0x8, f"{what}: expected a close frame, got opcode {op:#x} {payload[:60]!r}"
    got = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    assert got == code, f"{what}: expected close {code}, got {got} {payload[2:]!r}"
    rest = ws.expect_stream_end(timeout=5)
    assert rest == b"", f"{what}: bytes after the close frame: {rest[:80]!r}"


# --- the negotiation ---------------------------------------------------------

def test_h2_with_connect_protocol_and_200():
    c = h2conn()
    try:
        assert c.connect_protocol_enabled, "no SETTINGS_ENABLE_CONNECT_PROTOCOL from mod_http2"
        ws = c.websocket("/ws/echo")
        assert ws.status == 200, ws.status
        # mod_http2 drops the HTTP/1.1 upgrade headers from the module's 101
        for h in ("upgrade", "connection", "sec-websocket-accept"):
            assert h not in ws.response_headers, ws.response_headers
        ws.send(TEXT, b"over h2")
        assert ws.recv_message() == (TEXT, b"over h2")
        ws.close(1000)
        assert ws.expect_close() == (1000, "")
        assert ws.expect_stream_end() == b""
    finally:
        c.close()
    # The access log has the request as the module saw it: an HTTP/2 GET, 101.
    deadline = time.time() + 5
    while time.time() < deadline and '"GET /ws/echo HTTP/2.0" 101' not in apache.access_log():
        time.sleep(0.05)
    assert '"GET /ws/echo HTTP/2.0" 101' in apache.access_log(), apache.access_log()[-1000:]
    # hub writes never apply to a stream: the hub would write to mod_http2's dummy socket
    assert "upgraded /ws/echo (app echo, hub writes not possible here)" in apache.error_log()


def test_status_counts_h2_upgrades():
    before = status()["apps"]["echo"]
    c = h2conn()
    try:
        for _ in range(2):
            ws = c.websocket("/ws/echo")
            ws.send(TEXT, b"x")
            assert ws.recv_message() == (TEXT, b"x")
            ws.close(1000)
            ws.expect_close()
            ws.expect_stream_end()
    finally:
        c.close()
    w = WS(apache.port)  # an HTTP/1.1 upgrade is not counted as h2
    w.send(TEXT, b"y")
    assert w.recv_message() == (TEXT, b"y")
    w.shutdown()
    after = status()["apps"]["echo"]
    assert after["accepted_h2"] - before["accepted_h2"] == 2, (before, after)
    assert after["accepted"] - before["accepted"] == 3, (before, after)


# --- echo ----------------------------------------------------------------------

@time_limit(60)
def test_echo_sizes_text_and_binary():
    c = h2conn()
    try:
        ws = c.websocket("/ws/echo")
        for payload in (b"", b"a", "wörld €".encode(), b"t" * 125, b"t" * 126):
            ws.send(TEXT, payload)
            assert ws.recv_message() == (TEXT, payload)
        for n in (1, 125, 126, 65535, 65536, 65537, 1 << 20):
            data = os.urandom(n)
            ws.send(BINARY, data)
            op, got = ws.recv_message(timeout=20)
            assert op == BINARY and got == data, f"binary {n}: got {len(got)} bytes"
        ws.close(1000)
        assert ws.expect_close() == (1000, "")
    finally:
        c.close()


def test_fragmented_with_interleaved_ping():
    c = h2conn()
    try:
        ws = c.websocket("/ws/echo")
        ws.send(TEXT, "frag-", fin=False)
        ws.send(PING, b"h2-ping")
        ws.send(CONT, "men", fin=False)
        ws.send(CONT, "ted", fin=True)
        fin, op, payload, _ = ws.recv_frame()
        assert (op, payload) == (PONG, b"h2-ping"), (op, payload)
        assert ws.recv_message() == (TEXT, b"frag-mented")
        big = os.urandom(64 * 1024)
        ws.send(BINARY, big[:1000], fin=False)
        ws.send(CONT, big[1000:40000], fin=False)
        ws.send(CONT, b"", fin=False)
        ws.send(CONT, big[40000:], fin=True)
        assert ws.recv_message(timeout=10) == (BINARY, big)
    finally:
        c.close()


def test_many_frames_in_one_data_frame_and_split_frames():
    c = h2conn()
    try:
        ws = c.websocket("/ws/echo")
        msgs = [f"h2 message {i}".encode() for i in range(200)]
        ws.send_raw(b"".join(encode_frame(TEXT, m) for m in msgs))
        for i, m in enumerate(msgs):
            assert ws.recv_message(timeout=5) == (TEXT, m), f"message {i}"
        # one frame cut into DATA frames of 1..7 bytes
        raw = encode_frame(TEXT, "split across many DATA frames")
        i = 0
        while i < len(raw):
            n = 1 + i % 7
            ws.send_raw(raw[i:i + n])
            i += n
        assert ws.recv_message() == (TEXT, b"split across many DATA frames")
    finally:
        c.close()


# --- close codes (Autobahn-style framing checks) -------------------------------

VIOLATIONS = [
    ("unmasked frame", encode_frame(TEXT, b"x", mask=False), 1002, "/ws/echo"),
    ("reserved opcode 3", encode_frame(0x3, b"x"), 1002, "/ws/echo"),
    ("reserved control opcode 0xB", encode_frame(0xB, b""), 1002, "/ws/echo"),
    ("RSV1 without an extension", encode_frame(TEXT, b"x", rsv=4), 1002, "/ws/echo"),
    ("fragmented ping", encode_frame(PING, b"x", fin=False), 1002, "/ws/echo"),
    ("continuation without a start", encode_frame(CONT, b"x"), 1002, "/ws/echo"),
    ("control frame of 126 bytes", encode_frame(PING, b"p" * 126), 1002, "/ws/echo"),
    ("invalid UTF-8", encode_frame(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007,
     "/ws/echo"),
    ("invalid UTF-8 across fragments",
     encode_frame(TEXT, b"\xce", fin=False) + encode_frame(CONT, b"\xff", fin=True), 1007, "/ws/echo"),
    ("close code 1005 (never sent)", encode_frame(0x8, b"\x03\xed"), 1002, "/ws/echo"),
    ("close code 999", encode_frame(0x8, b"\x03\xe7"), 1002, "/ws/echo"),
    ("one-byte close payload", encode_frame(0x8, b"\x03"), 1002, "/ws/echo"),
    ("close reason not UTF-8", encode_frame(0x8, b"\x03\xe8\xff\xfe"), 1007, "/ws/echo"),
    ("message over WSBridgeMaxMessageSize", encode_frame(BINARY, b"b" * 1025), 1009, "/ws/small"),
    ("fragments adding up past the limit",
     encode_frame(TEXT, b"a" * 600, fin=False) + encode_frame(CONT, b"a" * 600, fin=True), 1009, "/ws/small"),
]


@time_limit(60)
def test_violations_get_their_close_codes_and_the_connection_lives_on():
    # All on one HTTP/2 connection: a failed WebSocket ends its stream only.
    c = h2conn()
    try:
        for what, raw, code, path in VIOLATIONS:
            ws = c.websocket(path)
            ws.send_raw(raw)
            expect_failure(ws, code, what)
        ws = c.websocket("/ws/echo")
        ws.send(TEXT, b"still here")
        assert ws.recv_message() == (TEXT, b"still here")
    finally:
        c.close()


def test_message_at_the_limit_passes():
    c = h2conn()
    try:
        ws = c.websocket("/ws/small")
        ws.send(BINARY, b"k" * 1024)
        assert ws.recv_message() == (BINARY, b"k" * 1024)
    finally:
        c.close()


def test_client_close_codes_are_echoed():
    c = h2conn()
    try:
        for code in (1000, 1001, 3000, 4999):
            ws = c.websocket("/ws/echo")
            ws.close(code, b"bye")
            assert ws.expect_close() == (code, ""), code
            assert ws.expect_stream_end() == b"", code
    finally:
        c.close()


# --- the stream's end ------------------------------------------------------------

def wait_open(app, n, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        got = status()["apps"][app]["open"]
        if got == n or time.time() > deadline:
            return got
        time.sleep(0.1)


@time_limit(30)
def test_client_end_stream_and_reset_end_the_session():
    assert wait_open("echo", 0) == 0
    c = h2conn()
    try:
        ws = c.websocket("/ws/echo")
        ws.send(TEXT, b"before the end")
        assert ws.recv_message() == (TEXT, b"before the end")
        assert wait_open("echo", 1) == 1
        ws.end_stream()  # like a TCP FIN without a close frame
        assert ws.expect_stream_end(timeout=5) == b""
        assert wait_open("echo", 0) == 0, "the session outlived the client's END_STREAM"
        ws = c.websocket("/ws/echo")
        ws.send(TEXT, b"x")
        assert ws.recv_message() == (TEXT, b"x")
        assert wait_open("echo", 1) == 1
        ws.reset()  # RST_STREAM: the client drops the WebSocket, keeps the connection
        assert wait_open("echo", 0) == 0, "the session outlived the client's RST_STREAM"
        ws = c.websocket("/ws/echo")  # the connection still serves
        ws.send(TEXT, b"y")
        assert ws.recv_message() == (TEXT, b"y")
    finally:
        c.close()
    assert wait_open("echo", 0) == 0, "the session outlived the closed connection"


@time_limit(40)
def test_idle_stream_survives_apache_timeouts():
    # Timeout 10 and RequestReadTimeout header=5-20 (instance.sh): mod_http2
    # keeps a connection with open streams, mod_reqtimeout is off the stream.
    c = h2conn()
    try:
        ws = c.websocket("/ws/echo")
        ws.send(TEXT, b"before")
        assert ws.recv_message() == (TEXT, b"before")
        time.sleep(12)
        ws.send(TEXT, b"after 12 s idle")
        assert ws.recv_message() == (TEXT, b"after 12 s idle")
    finally:
        c.close()


@time_limit(40)
def test_several_websockets_on_one_connection_and_plain_requests_beside():
    c = H2Conn(apache.ssl_port, window=65535)  # HTTP/2's own stream window
    try:
        streams = [c.websocket("/ws/echo") for _ in range(5)]
        for round_ in range(20):
            for i, ws in enumerate(streams):
                ws.send(TEXT, f"s{i} r{round_}")
            for i, ws in enumerate(streams):
                assert ws.recv_message() == (TEXT, f"s{i} r{round_}".encode())
        # a plain GET on the same connection is answered while they are open
        code, _, body = c.get("/ws/status")
        assert code == 200 and json.loads(body)["apps"]["echo"]["open"] >= 5, (code, body[:300])
        # One stops reading: its window closes after 64 KiB, and the second
        # echo blocks its session in mod_http2's output beam. The others go on.
        stalled = streams[0]
        stalled.hold = True
        big = [os.urandom(100 * 1024), os.urandom(100 * 1024)]
        for m in big:
            stalled.send(BINARY, m)
        deadline = time.time() + 10
        while time.time() < deadline:  # until the server has sent what the window allows
            try:
                c.pump(min(deadline, time.time() + 1.0))
            except TimeoutError:
                break
        assert 0 < stalled.held <= 65535, f"the server sent {stalled.held} bytes on a 64 KiB window"
        for i, ws in enumerate(streams[1:], 1):
            for k in range(5):
                ws.send(TEXT, f"past the stalled one {i}.{k}")
                assert ws.recv_message(timeout=5) == (TEXT, f"past the stalled one {i}.{k}".encode())
        code, _, _ = c.get("/ws/status")
        assert code == 200, code
        stalled.release()
        for m in big:
            got = stalled.recv_message(timeout=10)
            assert got == (BINARY, m), f"stalled stream: {len(got[1])} bytes"
        stalled.send(TEXT, b"after the stall")
        assert stalled.recv_message() == (TEXT, b"after the stall")
    finally:
        c.close()


# --- chat between an h2 client and an HTTP/1.1 client -----------------------------

def recv_json(ws, want, timeout=5.0):
    """Reads JSON frames until one matches want(dict); returns it."""
    deadline = time.time() + timeout
    while True:
        op, payload = ws.recv_message(timeout=max(0.05, deadline - time.time()))
        ev = json.loads(payload)
        if want(ev):
            return ev


@time_limit(40)
def test_chat_between_h2_and_http11_clients():
    room = f"h2room-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    c = h2conn()
    plain = WS(apache.port, path="/ws/chat")
    tls11 = WS(apache.ssl_port, path="/ws/chat", ssl=True)  # ALPN-less TLS: HTTP/1.1 on the h2 listener
    try:
        h2ws = c.websocket("/ws/chat")
        recv_json(h2ws, lambda e: e["type"] == "welcome")
        for ws, name in ((h2ws, "Hanna"), (plain, "Paul"), (tls11, "Tilda")):
            if ws is not h2ws:
                recv_json(ws, lambda e: e["type"] == "welcome")
            ws.send_text(json.dumps({"type": "join", "room": room, "name": name}))
            recv_json(ws, lambda e: e["type"] == "presence" and e.get("room") == room)
        said = []
        for i in range(10):
            for ws, name in ((h2ws, "Hanna"), (plain, "Paul"), (tls11, "Tilda")):
                text = f"{name} {i}"
                ws.send_text(json.dumps({"type": "message", "room": room, "text": text}))
                said.append(text)
        seen = {}
        for ws, name in ((h2ws, "Hanna"), (plain, "Paul"), (tls11, "Tilda")):
            got = []
            while len(got) < len(said):
                ev = recv_json(ws, lambda e: e["type"] == "message" and e["room"] == room, timeout=10)
                got.append((ev["seq"], ev["text"]))
            seen[name] = got
            assert sorted(t for _, t in got) == sorted(said), f"{name} missed messages"
            assert [s for s, _ in got] == sorted(s for s, _ in got), f"{name}: seq out of order"
        assert seen["Hanna"] == seen["Paul"] == seen["Tilda"], "the three clients saw different orders"
        # a direct message from the HTTP/1.1 user reaches the h2 user
        plain.send_text(json.dumps({"type": "direct", "to": "Hanna", "text": "psst"}))
        ev = recv_json(h2ws, lambda e: e["type"] == "direct")
        assert ev["text"] == "psst" and ev["from"] == "Paul", ev
    finally:
        plain.shutdown()
        tls11.shutdown()
        c.close()


def test_refusals_are_http2_answers():
    c = h2conn()
    try:
        try:
            c.websocket("/ws/secret-chat")
            raise AssertionError("a chat with WSBridgeSecret accepted a stream without a token")
        except StreamRefused as e:
            assert e.status == 401, (e.status, e.headers)
            assert b"token is required" in e.body, e.body
        # the connection still serves WebSockets after a refusal
        ws = c.websocket("/ws/echo")
        ws.send(TEXT, b"after 401")
        assert ws.recv_message() == (TEXT, b"after 401")
    finally:
        c.close()


def test_connect_with_end_stream_gets_400():
    # A CONNECT that ends its stream at once can carry no WebSocket.
    c = h2conn()
    try:
        sid = c.h2.get_next_available_stream_id()
        from h2client import H2WS
        s = H2WS(c, sid)
        c.streams[sid] = s
        c.h2.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                                (":path", "/ws/echo"), (":authority", c.authority),
                                ("sec-websocket-version", "13")], end_stream=True)
        c._flush()
        body = s.expect_stream_end(timeout=5)
        assert s.status == 400 and b"END_STREAM" in body, (s.status, body)
        ws = c.websocket("/ws/echo")  # the connection goes on
        ws.send(TEXT, b"ok")
        assert ws.recv_message() == (TEXT, b"ok")
    finally:
        c.close()


# --- Pusher --------------------------------------------------------------------------

def pusher_key():
    with open(os.path.join(apache.dir, "pusher.env")) as f:
        env = dict(line.strip().split("=", 1) for line in f if "=" in line)
    return env["PUSHER_APP_KEY"]


def test_pusher_protocol_over_h2():
    c = h2conn()
    try:
        ws = c.websocket(f"/app/{pusher_key()}?protocol=7&client=js&version=8.4.0")
        ev = recv_json(ws, lambda e: e.get("event") == "pusher:connection_established")
        data = json.loads(ev["data"])
        assert data["socket_id"] and data["activity_timeout"] > 0, data
        ws.send_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": "h2-public"}}))
        ev = recv_json(ws, lambda e: e.get("event") == "pusher_internal:subscription_succeeded")
        assert ev["channel"] == "h2-public", ev
        ws.send_text(json.dumps({"event": "pusher:ping", "data": {}}))
        recv_json(ws, lambda e: e.get("event") == "pusher:pong")
    finally:
        c.close()


# --- the backend bridge (PHP) ----------------------------------------------------------

@time_limit(60)
def test_php_backend_over_h2():
    # The PHP demo (conf/dev-locations.conf /ws/php, php-fpm): its sub-requests
    # run on the stream's secondary connection; its GRIP publish reaches an
    # HTTP/1.1 client of the same channel and the h2 voter alike.
    import tempfile
    from harness import BASE
    fd, poll_file = tempfile.mkstemp(prefix="poll-", suffix=".json", dir=BASE)
    os.close(fd)
    os.chmod(poll_file, 0o666)  # php-fpm's children run as www-data
    a = Apache(ssl=True, env={"H2": "1", "PHP": "1", "POLL_FILE": poll_file}).start()
    try:
        c = H2Conn(a.ssl_port)
        voter = c.websocket("/ws/php")
        poll = recv_json(voter, lambda e: e["type"] == "poll")
        assert poll["total"] == 0, poll
        watcher = WS(a.port, path="/ws/php")
        assert recv_json(watcher, lambda e: e["type"] == "poll")["total"] == 0
        voter.send_text(json.dumps({"type": "vote", "option": "polling"}))
        for ws, who in ((voter, "h2 voter"), (watcher, "HTTP/1.1 watcher")):
            tally = recv_json(ws, lambda e: e["type"] == "tally", timeout=10)
            assert tally["votes"]["polling"] == 1 and tally["total"] == 1, (who, tally)
        voter.send_text(json.dumps({"type": "vote", "option": "daemon"}))  # Set-Meta-Voted: once only
        err = recv_json(voter, lambda e: e["type"] == "error", timeout=10)
        assert err["code"], err
        watcher.shutdown()
        c.close()
        no_child_crash(a)
    finally:
        a.stop()
        os.unlink(poll_file)


# --- graceful restart --------------------------------------------------------------------

def graceful_restart_closes_h2_websockets(mpm):
    a = Apache(ssl=True, mpm=mpm, env={"H2": "1"}).start()
    try:
        conns = [H2Conn(a.ssl_port) for _ in range(2)]
        streams = [conns[0].websocket("/ws/echo"), conns[0].websocket("/ws/chat"), conns[1].websocket("/ws/echo")]
        for ws in (streams[0], streams[2]):
            ws.send(TEXT, b"before")
            assert ws.recv_message() == (TEXT, b"before")
        assert json.loads(streams[1].recv_message()[1])["type"] == "welcome"
        t0 = time.time()
        threading.Thread(target=a.graceful).start()
        for i, ws in enumerate(streams):
            assert ws.expect_close(timeout=8) == (1001, "server going away"), f"{mpm}: stream {i}"
            assert ws.expect_stream_end(timeout=5) == b"", f"{mpm}: stream {i}: data after the close"
        took = time.time() - t0
        assert took < 8, f"{mpm}: closes took {took:.1f}s"
        for c in conns:
            c.close()
        # the restarted server takes new h2 WebSockets
        deadline = time.time() + 10
        while True:
            try:
                c = H2Conn(a.ssl_port)
                ws = c.websocket("/ws/echo")
                break
            except (StreamRefused, OSError, AssertionError):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        ws.send(TEXT, b"after restart")
        assert ws.recv_message() == (TEXT, b"after restart")
        c.close()
        no_child_crash(a)
    finally:
        a.stop()


@time_limit(60)
def test_graceful_restart_closes_h2_websockets_with_1001():
    # (mod_http2 is inactive under prefork: HTTP/1.1 only there)
    for mpm in ("event", "worker"):
        graceful_restart_closes_h2_websockets(mpm)


def test_no_child_crashed():
    no_child_crash(apache)


def test_few_h2_workers_are_warned_about():
    # 25 threads per child, 4 reserved: 21 WebSockets a child may hold.
    warning = "WebSockets over HTTP/2 could take every mod_http2 worker"
    a = Apache(ssl=True, env={"H2": "1"}, extra_conf="<IfModule http2_module>\n  H2MaxWorkers 20\n</IfModule>\n")
    a.start()
    try:
        assert a.wait_log(warning), a.error_log()[-2000:]
        assert "H2MaxWorkers 20 is not above the 21 WebSockets" in a.error_log(), a.error_log()[-2000:]
    finally:
        a.stop()
    # the default (3/2 of ThreadsPerChild: 37) leaves room: no warning
    assert apache.wait_log("ready (event MPM)")
    assert warning not in apache.error_log()
