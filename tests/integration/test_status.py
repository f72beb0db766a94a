"""The status page (SetHandler wsbridge-status) through a real Apache with
four children: open connections per app going up and down, accepted and
refused upgrades by reason, messages in/out, closes by code, all summed
over the children; the Prometheus exposition; a slow consumer cut off with
1008 and counted in queue_overflows; the mod_wsbridge section of
mod_status's server-status page."""
import asyncio
import json
import re
import socket
import time

from chatclient import (ChatClient, close_all, http, is_event, n_messages, run, status_json,
                        uniq)
from harness import shared_apache
from run import time_limit
from wsclient import (TEXT, WS, handshake_request, read_http_response,
                      ws_rest_until_eof)

SECRET = "status-secret-0123456789"

EXTRA = f"""
<Location /ws/fast>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeRateLimit 1000 1000
</Location>
<Location /ws/slow>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeMaxQueuedBytes 64K
  WSBridgeRateLimit 100000 100000
</Location>
<Location /ws/bulk>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeRateLimit 100000 100000
</Location>
<Location /ws/tok>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeSecret {SECRET}
</Location>
<Location /server-status>
  SetHandler server-status
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, mpm="event", children=4,
                                              threads=8, max_workers=32)


def status():
    return status_json(apache.port)


def chat(s):
    return s["apps"]["chat"]


def echo(s):
    return s["apps"]["echo"]


def wait_status(pred, timeout=5.0, what="status condition"):
    """Polls the status page (any child answers) until pred(status) holds."""
    deadline = time.time() + timeout
    while True:
        s = status()
        if pred(s):
            return s
        if time.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s: {json.dumps(s)[:1500]}")
        time.sleep(0.05)


def child(s, pid):
    for c in s["children"]:
        if c["pid"] == pid:
            return c
    return None


def closes(fig, code):
    return fig["closes"].get(str(code), 0)


def test_status_json_shape():
    s = status()
    for key in ("mpm", "pid", "children", "apps", "open", "refused", "bus_overruns"):
        assert key in s, f"status lacks {key!r}: {s}"
    assert s["mpm"] == "event", s["mpm"]
    assert s["pid"] in apache.child_pids(), (s["pid"], apache.child_pids())
    for app in ("echo", "chat"):
        fig = s["apps"][app]
        for key in ("open", "accepted", "messages_in", "messages_out", "bytes_in", "bytes_out",
                    "queue_overflows", "pings_sent", "hub_writes", "hub_handbacks", "closes"):
            assert key in fig, f"apps.{app} lacks {key!r}: {fig}"
    for reason in ("bad_request", "unauthorized", "forbidden_origin", "method_not_allowed",
                   "upgrade_required", "overloaded"):
        assert isinstance(s["refused"].get(reason), int), s["refused"]
    status_code, hdrs, _ = http(apache.port, "GET", "/ws/status")
    assert hdrs.get("cache-control") == "no-store", hdrs


@time_limit(30)
def test_open_accepted_messages_and_closes_across_children():
    room = uniq("stat")
    base = status()

    async def go():
        chats, echos = [], []
        try:
            for i in range(12):
                chats.append(await ChatClient.connect(apache.port, path="/ws/fast", name=f"s{i}"))
            for _ in range(3):
                echos.append(WS(apache.port, path="/ws/echo"))
            by_pid = {}
            for c in chats:
                by_pid[c.pid] = by_pid.get(c.pid, 0) + 1
            assert len(by_pid) >= 2, f"12 chat clients all in child {list(by_pid)}"
            s = wait_status(lambda s: chat(s)["open"] == chat(base)["open"] + 12
                            and echo(s)["open"] == echo(base)["open"] + 3, what="open 12 chat + 3 echo")
            assert chat(s)["accepted"] - chat(base)["accepted"] == 12, chat(s)
            assert echo(s)["accepted"] - echo(base)["accepted"] == 3, echo(s)
            assert s["open"] == chat(s)["open"] + echo(s)["open"], s
            # per child: exactly the clients whose welcome named that child
            for pid, n in by_pid.items():
                now, was = child(s, pid), child(base, pid)
                assert now is not None, f"child {pid} missing from status children {s['children']}"
                was_open = was["chat"]["open"] if was else 0
                assert now["chat"]["open"] - was_open == n, f"child {pid}: {now['chat']} want +{n} open"
            # whichever child answers, the totals are the same
            for _ in range(8):
                again = status()
                assert (chat(again)["open"], chat(again)["accepted"], echo(again)["open"]) == \
                    (chat(s)["open"], chat(s)["accepted"], echo(s)["open"]), (again["pid"], s["pid"])

            # traffic: each chat client sends join + 2 messages, each echo client 4
            for c in chats:
                await c.join(room)
            for c in chats:
                for k in range(2):
                    await c.message(room, f"{c.you}-{k}")
            await asyncio.gather(*(c.wait_events(room, lambda evs: n_messages(evs) >= 24, timeout=10)
                                   for c in chats))
            for w in echos:
                for k in range(4):
                    w.send(TEXT, f"echo {k}")
                    assert w.recv_message() == (TEXT, f"echo {k}".encode())
            received = sum(len(c.frames) for c in chats)
            s = wait_status(lambda s: chat(s)["messages_out"] - chat(base)["messages_out"] >= received
                            and echo(s)["messages_out"] - echo(base)["messages_out"] >= 12,
                            what="messages_out")
            assert chat(s)["messages_in"] - chat(base)["messages_in"] == 36, chat(s)
            assert echo(s)["messages_in"] - echo(base)["messages_in"] == 12, echo(s)
            assert chat(s)["messages_out"] - chat(base)["messages_out"] == received, \
                f"chat messages_out +{chat(s)['messages_out'] - chat(base)['messages_out']}, " \
                f"the clients received {received} frames"
            assert echo(s)["messages_out"] - echo(base)["messages_out"] == 12, echo(s)
            assert chat(s)["bytes_in"] > chat(base)["bytes_in"], chat(s)
            assert chat(s)["bytes_out"] > chat(base)["bytes_out"], chat(s)

            # closes: 4 x 1000, 3 x 1001, 2 dropped (1006), 3 x 4000; echo 3 x 1000
            for c in chats[:4]:
                await c.close(1000)
            for c in chats[4:7]:
                await c.close(1001)
            for c in chats[7:9]:
                c.ws.transport.abort()
            for c in chats[9:]:
                await c.close(4000)
            for w in echos:
                w.close(1000)
                ws_rest_until_eof(w, timeout=3)
                w.shutdown()
            s = wait_status(lambda s: chat(s)["open"] == chat(base)["open"]
                            and echo(s)["open"] == echo(base)["open"], what="open back to the baseline")
            want = {1000: 4, 1001: 3, 1006: 2, "3000-4999": 3}
            got = {code: closes(chat(s), code) - closes(chat(base), code) for code in want}
            assert got == want, f"chat closes by code: {got}, want {want} ({chat(s)['closes']})"
            assert closes(echo(s), 1000) - closes(echo(base), 1000) == 3, echo(s)["closes"]
        finally:
            await close_all(chats)
            for w in echos:
                w.shutdown()
    run(go(), timeout=28)


def raw(path="/ws/chat", **kw):
    req, _ = handshake_request(path=path, **kw)
    status_code, headers, body, sock = read_http_response(apache.port, req)
    sock.close()
    return status_code


def test_refused_upgrades_by_reason():
    base = status()
    assert raw(extra={"Origin": "http://evil.example"}) == 403
    assert raw(extra={"Origin": "https://other.example:8443"}) == 403
    assert raw(version="8") == 426
    status_code, _, _ = http(apache.port, "GET", "/ws/chat")  # plain GET
    assert status_code == 426, status_code
    assert raw(path="/ws/tok") == 401
    assert raw(method="POST") == 405
    assert raw(key="dG9vIHNob3J0") == 400
    assert raw(upgrade="h2c") == 400
    s = status()
    want = {"forbidden_origin": 2, "upgrade_required": 2, "unauthorized": 1, "method_not_allowed": 1,
            "bad_request": 2, "overloaded": 0}
    got = {k: s["refused"][k] - base["refused"][k] for k in want}
    assert got == want, f"refused by reason: {got}, want {want}"
    assert chat(s)["accepted"] == chat(base)["accepted"], "a refused upgrade counted as accepted"
    assert raw() == 101  # and a good one is still accepted
    wait_status(lambda s: chat(s)["accepted"] == chat(base)["accepted"] + 1)


PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$')
PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """Parses the text exposition format strictly; returns
    {family: {"type": t, "samples": {(name, labels): value}}}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    families, order, current = {}, [], None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] == "TYPE":
                assert len(parts) == 4, f"line {n}: bad TYPE line {line!r}"
                name, typ = parts[2], parts[3]
                assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), f"line {n}: {typ}"
                assert name not in families, f"line {n}: second TYPE line for {name}"
                families[name] = {"type": typ, "samples": {}}
                order.append(name)
                current = name
            continue
        m = PROM_SAMPLE.match(line)
        assert m, f"line {n}: not a sample line: {line!r}"
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        labels = []
        pos = 0
        while pos < len(labels_text):
            lm = PROM_LABEL.match(labels_text, pos)
            assert lm, f"line {n}: bad labels {labels_text!r}"
            labels.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        float(value)  # must parse
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in families:
                fam = name[:-len(suffix)]
        assert fam in families, f"line {n}: sample {name} before (or without) its TYPE line"
        assert fam == current, f"line {n}: sample of {fam} not grouped under its TYPE line ({current})"
        key = (name, tuple(sorted(labels)))
        assert key not in families[fam]["samples"], f"line {n}: duplicate series {key}"
        families[fam]["samples"][key] = float(value)
    return families


def test_prometheus_exposition():
    status_code, hdrs, body = http(apache.port, "GET", "/ws/status?format=prometheus")
    assert status_code == 200, status_code
    assert hdrs.get("content-type", "").startswith("text/plain"), hdrs
    assert "version=0.0.4" in hdrs.get("content-type", ""), hdrs
    fams = parse_prometheus(body.decode())
    assert fams, "no metric families"
    for name, fam in fams.items():
        assert name.startswith("wsbridge_"), name
        assert fam["samples"], f"family {name} has a TYPE but no samples"
        if fam["type"] == "counter":
            assert all(v >= 0 for v in fam["samples"].values()), name
    s = status()

    def val(family, **labels):
        return fams[family]["samples"][(family, tuple(sorted(labels.items())))]

    # nothing happens in between: the figures equal the JSON ones
    for app in ("echo", "chat"):
        fig = s["apps"][app]
        assert val("wsbridge_open_connections", app=app) == fig["open"], app
        for family, key in (("upgrades_accepted_total", "accepted"),
                            ("messages_in_total", "messages_in"),
                            ("messages_out_total", "messages_out"),
                            ("bytes_in_total", "bytes_in"), ("bytes_out_total", "bytes_out"),
                            ("queue_overflows_total", "queue_overflows"),
                            ("pings_sent_total", "pings_sent"), ("hub_writes_total", "hub_writes"),
                            ("hub_handbacks_total", "hub_handbacks")):
            assert val("wsbridge_" + family, app=app) == fig[key], (app, family, fig[key])
    for reason, n in s["refused"].items():
        assert val("wsbridge_upgrades_refused_total", reason=reason) == n, reason
    assert fams["wsbridge_open_connections"]["type"] == "gauge"
    # closes by code as labels
    for app in ("echo", "chat"):
        for code, n in s["apps"][app]["closes"].items():
            assert val("wsbridge_closes_total", app=app, code=code) == n, (app, code)


@time_limit(40)
def test_slow_consumer_is_disconnected_others_keep_everything():
    room = uniq("slow")
    base = status()
    flood = 2000
    text = "x" * 4000

    # the non-reader: a raw socket with a tiny receive buffer that, after
    # its join, never reads again
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", apache.port))
    req, _ = handshake_request(path="/ws/slow")
    sock.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "closed during the handshake"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0], head
    lazy = WS.__new__(WS)
    lazy.sock, lazy.buf = sock, rest
    try:
        welcome = json.loads(lazy.recv_message()[1])
        lazy.send(TEXT, json.dumps({"type": "join", "room": room, "name": "lazy"}))
        for _ in range(3):  # history, join, presence
            lazy.recv_message()

        async def go():
            flooder = await ChatClient.connect(apache.port, path="/ws/bulk", name="flooder")
            reader = await ChatClient.connect(apache.port, path="/ws/bulk", name="reader")
            try:
                await reader.join(room)
                await flooder.join(room)

                async def send_all():
                    for k in range(flood):
                        await flooder.message(room, f"{k:05d}{text}")
                        if k % 20 == 0:
                            await asyncio.sleep(0)

                def all_in(evs):
                    return n_messages(evs) >= flood
                t0 = time.time()
                await asyncio.gather(send_all(), flooder.wait_events(room, all_in, timeout=30),
                                     reader.wait_events(room, all_in, timeout=30))
                for c in (flooder, reader):
                    msgs = [e for e in c.events[room] if e["type"] == "message"]
                    assert [m["text"][:5] for m in msgs] == [f"{k:05d}" for k in range(flood)], \
                        f"{c.you}: messages missing or out of order"
                    seqs = [m["seq"] for m in msgs]
                    assert seqs == sorted(seqs) and len(set(seqs)) == flood
                    assert c.closed is None, f"{c.you} was disconnected: {c.closed}"
                f_msgs = [e["seq"] for e in flooder.events[room] if e["type"] == "message"]
                r_msgs = [e["seq"] for e in reader.events[room] if e["type"] == "message"]
                assert f_msgs == r_msgs
                # the non-reader left the room (its session closed it)
                await reader.wait_events(room, lambda evs: any(is_event(e, "leave", "lazy")
                                                               for e in evs), timeout=10)
                return time.time() - t0
            finally:
                await flooder.close()
                await reader.close()
        run(go(), timeout=35)
        s = wait_status(lambda s: chat(s)["queue_overflows"] > chat(base)["queue_overflows"], timeout=5,
                        what="queue_overflows up")
        assert closes(chat(s), 1008) > closes(chat(base), 1008), chat(s)["closes"]
        pid_fig = child(s, welcome["pid"])
        assert pid_fig and pid_fig["chat"]["queue_overflows"] >= 1, pid_fig
        # what the non-reader finds in its socket: frames, then close 1008 (or just EOF)
        code = None
        try:
            code, reason = lazy.expect_close(timeout=10)
        except Exception as e:  # noqa: B902 - EOF/reset are acceptable endings too
            assert type(e).__name__ in ("Closed", "ConnectionResetError"), repr(e)
        assert code in (None, 1008), f"slow consumer closed with {code}"
        if code == 1008:
            assert ws_rest_until_eof(lazy, timeout=5) == b"", "bytes after the close frame"
    finally:
        sock.close()


def test_mod_status_has_a_wsbridge_section():
    status_code, _, body = http(apache.port, "GET", "/server-status")
    assert status_code == 200, (status_code, body[:200])
    text = body.decode("latin-1")
    assert "mod_wsbridge" in text, text[-1500:]
    assert "<h2>mod_wsbridge</h2>" in text and "chat" in text
    status_code, _, body = http(apache.port, "GET", "/server-status?auto")
    assert status_code == 200
    m = re.search(r"^WSBridgeOpen: (\d+)$", body.decode("latin-1"), re.M)
    assert m, body[-800:]
    assert int(m.group(1)) == status()["open"]


def test_status_405_says_allow_get():
    status_code, hdrs, _ = http(apache.port, "POST", "/ws/status", "{}")
    assert status_code == 405, status_code
    allow = [m.strip() for m in hdrs.get("allow", "").split(",")]
    assert "GET" in allow, f"POST /ws/status: 405 with Allow: {hdrs.get('allow')!r}, want GET"
