"""The status page (SetHandler wsbridge-status) through a real Apache with
four children: open connections per app going up and down, accepted and
refused upgrades by reason, messages in/out, closes by code, all summed
over the children; the Prometheus exposition; a slow consumer cut off with
1008 and counted in queue_overflows; the mod_wsbridge section of
mod_status's server-status page; the HTML view for admins (chosen by Accept
or ?format=), its compiled-in assets, HEAD requests, the version and the
per-child figures, HELP lines in the Prometheus output."""
import asyncio
import json
import os
import re
import socket
import time

from chatclient import (FAST_CHAT, ChatClient, chat_location, close_all, http, is_event,
                        n_messages, run, status_json, token_chat, uniq)
from harness import shared_apache
from run import time_limit
from wsclient import (TEXT, WS, handshake_request, read_http_response,
                      ws_rest_until_eof)

SECRET = "status-secret-0123456789"

EXTRA = (
    # The tests count WebSockets per child; mpm_event may put most in one child.
    "WSBridgeReserveWorkers 0\n"
    + FAST_CHAT
    + chat_location("/ws/slow", "WSBridgeMaxQueuedBytes 64K", "WSBridgeRateLimit 100000 100000")
    + chat_location("/ws/bulk", "WSBridgeRateLimit 100000 100000")
    + token_chat(SECRET)
    + """<Location /server-status>
  SetHandler server-status
</Location>
""")

apache = None  # set by setup_module
# 16 threads per child: WSBridgeReserveWorkers keeps at least 4 of them for
# plain requests, and the tests below open up to 15 WebSockets at a time.
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, mpm="event", children=4,
                                              threads=16, max_workers=64)


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
                    "queue_overflows", "pings_sent", "hub_writes", "hub_handbacks", "accepted_h2",
                    "rate_limited", "closes"):
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


# ---------------------------------------------------------------- the HTML view

BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
                  "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def get(path, accept=None, method="GET", headers=None):
    h = dict(headers or {})
    if accept is not None:
        h["Accept"] = accept
    return http(apache.port, method, path, headers=h)


def vary(hdrs):
    return [v.strip().lower() for v in hdrs.get("vary", "").split(",") if v.strip()]


def is_html(status_code, hdrs, body):
    return (status_code == 200 and hdrs.get("content-type", "").startswith("text/html")
            and body.lstrip().lower().startswith(b"<!doctype html"))


def is_json(status_code, hdrs, body):
    if status_code != 200 or not hdrs.get("content-type", "").startswith("application/json"):
        return False
    s = json.loads(body)
    return "apps" in s and "open" in s


def test_browser_accept_gets_html_with_vary():
    status_code, hdrs, body = get("/ws/status", BROWSER_ACCEPT)
    assert is_html(status_code, hdrs, body), (status_code, hdrs, body[:200])
    assert hdrs["content-type"] == "text/html; charset=utf-8", hdrs
    assert "accept" in vary(hdrs), f"HTML chosen by Accept without Vary: Accept: {hdrs}"
    assert hdrs.get("cache-control") == "no-store", hdrs
    # Everything comes from the module at this URL; nothing inline, so the
    # page can carry a strict CSP.
    csp = hdrs.get("content-security-policy", "")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    text = body.decode()
    assert 'src="?asset=status.js"' in text and 'href="?asset=status.css"' in text, text[:800]
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag, f"inline script: {tag}"
    assert "<style" not in text and " style=" not in text, "inline style in the HTML shell"
    assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler in the HTML shell"
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "the page loads something from elsewhere"
    assert hdrs.get("content-length") == str(len(body)), hdrs


def test_format_html_without_accept():
    for accept in (None, "*/*", "application/json"):
        status_code, hdrs, body = get("/ws/status?format=html", accept)
        assert is_html(status_code, hdrs, body), (accept, status_code, hdrs)
    status_code, hdrs, body = get("/ws/status?x=1&format=html")  # anywhere in the query
    assert is_html(status_code, hdrs, body), (status_code, hdrs)


def test_format_json_wins_over_accept():
    status_code, hdrs, body = get("/ws/status?format=json", BROWSER_ACCEPT)
    assert is_json(status_code, hdrs, body), (status_code, hdrs, body[:200])
    status_code, hdrs, body = get("/ws/status?format=prometheus", BROWSER_ACCEPT)
    assert status_code == 200 and hdrs["content-type"].startswith("text/plain"), hdrs
    assert body.startswith(b"# HELP wsbridge_"), body[:100]


def test_json_unless_html_is_preferred():
    """No Accept (curl), */* (scripts) and anything that does not rank HTML
    above JSON keep getting the JSON exactly as before."""
    status_code, hdrs, body = get("/ws/status")
    assert is_json(status_code, hdrs, body), (status_code, hdrs, body[:200])
    assert body.endswith(b"}\n") and body.count(b"\n") == 1, "JSON body: one line and a newline"
    assert "accept" in vary(hdrs), hdrs
    assert hdrs.get("cache-control") == "no-store", hdrs
    assert "content-security-policy" not in hdrs, hdrs
    for accept in ("*/*", "application/json", "application/json, text/html", "application/*, text/html",
                   "text/html;q=0.5, application/json", "text/html;q=0, */*", "text/plain", "image/png",
                   "*/*;q=0.8, application/json;q=0.9, text/html;q=0.9", ""):
        status_code, hdrs, body = get("/ws/status", accept)
        assert is_json(status_code, hdrs, body), f"Accept: {accept!r} got {hdrs.get('content-type')}"
    for accept in ("text/html", "TEXT/HTML", "text/html, */*;q=0.1", "text/*", "application/json;q=0.5, text/html",
                   "text/html;level=1, application/json;q=0.9", BROWSER_ACCEPT):
        status_code, hdrs, body = get("/ws/status", accept)
        assert is_html(status_code, hdrs, body), f"Accept: {accept!r} got {hdrs.get('content-type')}"


def test_version_key():
    with open(os.path.join(ROOT, "VERSION")) as f:
        want = f.read().strip()
    s = status()
    assert s.get("version") == want, (s.get("version"), want)
    assert next(iter(s)) == "version", f"version is not the first key: {list(s)[:3]}"


def test_head_requests():
    for path, ctype in (("/ws/status", "application/json"), ("/ws/status?format=html", "text/html"),
                        ("/ws/status?format=prometheus", "text/plain"),
                        ("/ws/status?asset=status.js", "text/javascript"),
                        ("/ws/status?asset=status.css", "text/css"),
                        ("/ws/status?asset=favicon.svg", "image/svg+xml")):
        status_code, hdrs, body = get(path, method="HEAD")
        assert status_code == 200, (path, status_code)
        assert hdrs.get("content-type", "").startswith(ctype), (path, hdrs)
        assert body == b"", f"HEAD {path} sent a body: {body[:80]!r}"
        # the headers GET sends; the JSON and Prometheus figures change
        # between two requests, so their lengths are not compared
        _, ghdrs, gbody = get(path)
        assert vary(hdrs) == vary(ghdrs) and hdrs.get("etag") == ghdrs.get("etag"), (path, hdrs, ghdrs)
        if "asset=" in path or "format=html" in path:
            assert hdrs.get("content-length") == str(len(gbody)), (path, hdrs, len(gbody))
    status_code, hdrs, body = get("/ws/status", BROWSER_ACCEPT, method="HEAD")
    assert status_code == 200 and hdrs["content-type"].startswith("text/html") and body == b"", hdrs


def test_assets_content_types_and_revalidation():
    want = {"status.js": "text/javascript; charset=utf-8", "status-extra.js": "text/javascript; charset=utf-8",
            "status.css": "text/css; charset=utf-8",
            "favicon.svg": "image/svg+xml"}
    _, _, page = get("/ws/status?format=html")
    referenced = set(re.findall(r'(?:src|href)="\?asset=([^"&]+)"', page.decode()))
    assert referenced == set(want), f"the page references {referenced}"
    for name, ctype in want.items():
        status_code, hdrs, body = get(f"/ws/status?asset={name}")
        assert status_code == 200, (name, status_code)
        assert hdrs.get("content-type") == ctype, (name, hdrs)
        assert hdrs.get("x-content-type-options") == "nosniff", (name, hdrs)
        assert len(body) > 100 and hdrs.get("content-length") == str(len(body)), (name, hdrs)
        etag = hdrs.get("etag", "")
        assert re.fullmatch(r'"[^"]+"', etag), (name, hdrs)
        assert "no-cache" in hdrs.get("cache-control", ""), (name, hdrs)
        status_code, hdrs2, body2 = get(f"/ws/status?asset={name}", headers={"If-None-Match": etag})
        assert status_code == 304 and body2 == b"", (name, status_code, hdrs2)
        status_code, _, _ = get(f"/ws/status?asset={name}", headers={"If-None-Match": '"other"'})
        assert status_code == 200, (name, status_code)
    js = get("/ws/status?asset=status.js")[2].decode()
    assert "?format=json" in js, "the script does not poll the JSON of its own URL"
    assert "http://" not in js.replace("http://www.w3.org/2000/svg", "") and "https://" not in js
    for bad in ("nope.js", "", "../status.cpp", "status.js%00"):
        status_code, _, _ = get(f"/ws/status?asset={bad}")
        assert status_code == 404, (bad, status_code)


@time_limit(30)
def test_children_add_up_to_the_open_figures():
    async def go():
        chats, echos = [], []
        try:
            for i in range(8):
                chats.append(await ChatClient.connect(apache.port, path="/ws/fast", name=f"k{i}"))
            for _ in range(5):
                echos.append(WS(apache.port, path="/ws/echo"))
            pids = {c.pid for c in chats}
            s = wait_status(lambda s: chat(s)["open"] >= 8 and echo(s)["open"] >= 5, what="8 chat + 5 echo open")
            # quiet now: take a snapshot where nothing moves
            time.sleep(0.2)
            s = status()
            live = set(apache.child_pids())
            seen = set()
            for c in s["children"]:
                assert isinstance(c["pid"], int) and c["pid"] in live, (c["pid"], live)
                assert c["pid"] not in seen, f"child {c['pid']} listed twice"
                seen.add(c["pid"])
                for app in ("echo", "chat"):
                    assert isinstance(c[app]["open"], int) and c[app]["open"] >= 0, c
            assert pids <= seen, f"chat clients in {pids}, children listed {seen}"
            for app in ("echo", "chat"):
                per_child = sum(c[app]["open"] for c in s["children"])
                assert per_child == s["apps"][app]["open"], (app, per_child, s["apps"][app]["open"])
                accepted = sum(c[app]["accepted"] for c in s["children"])
                assert accepted <= s["apps"][app]["accepted"], (app, accepted)  # departed children too
            assert s["open"] == chat(s)["open"] + echo(s)["open"], s
            for pid in pids:
                assert child(s, pid)["chat"]["open"] >= sum(1 for c in chats if c.pid == pid), child(s, pid)
        finally:
            await close_all(chats)
            for w in echos:
                w.shutdown()
    run(go(), timeout=28)


def test_prometheus_has_help_before_every_type():
    status_code, hdrs, body = http(apache.port, "GET", "/ws/status?format=prometheus")
    assert status_code == 200, status_code
    lines = body.decode().split("\n")
    types = [i for i, line in enumerate(lines) if line.startswith("# TYPE ")]
    helps = [i for i, line in enumerate(lines) if line.startswith("# HELP ")]
    assert types and len(helps) == len(types), (len(helps), len(types))
    for i in types:
        name = lines[i].split()[2]
        prev = lines[i - 1] if i else ""
        m = re.match(r"^# HELP (\S+) (.+)$", prev)
        assert m and m.group(1) == name, f"TYPE {name} not preceded by its HELP line: {prev!r}"
        assert m.group(2).strip() and "\\" not in m.group(2), f"HELP {name}: {m.group(2)!r}"
    # apart from the HELP lines, the exposition is as before: a TYPE line,
    # then that family's samples
    rest = [line for line in lines if line and not line.startswith("# HELP ")]
    assert rest[0].startswith("# TYPE wsbridge_open_connections gauge"), rest[:2]
    assert all(line.startswith(("# TYPE wsbridge_", "wsbridge_")) for line in rest), rest
    parse_prometheus(body.decode())  # still strictly valid


def per_pid(pred_key, polls=60):
    """{pid: value} of a per-child figure (a key path into the answering
    child's status, None where that child lacks it), over many polls so
    every child is likely to have answered."""
    seen = {}
    for _ in range(polls):
        s = status()
        v = s
        for k in pred_key:
            v = v.get(k) if isinstance(v, dict) else None
        seen[s["pid"]] = v
    return seen


@time_limit(60)
def test_cid_repeat_counts_in_every_hub_and_the_bus_id_is_the_welcome_one():
    """hub.cid_duplicates (the answering child's engine: every engine that
    applies the repeated record drops it and counts it), hub.direct_cids,
    and bus.id, which is what a welcome reports."""
    async def go():
        # A chat client per child, so every child's hub runs.
        clients = [await ChatClient.connect(apache.port, name=f"Cid{i}") for i in range(8)]
        try:
            room = uniq("cid")
            for c in clients:
                await c.join(room)
            before = {pid: v for pid, v in per_pid(("hub", "cid_duplicates")).items() if v is not None}
            assert before, "no child answered with a hub"
            for _ in range(2):
                await clients[0].send({"type": "message", "room": room, "text": "once", "cid": "status-cid-1"})
            await clients[1].wait_events(room, lambda evs: n_messages(evs) >= 1)
            # Each child that had a hub before counts the repeat exactly once.
            # The MPM picks the child that answers a status request and may
            # favour some: wait for every child, but judge those that did
            # answer (at least one) if one never does within the time.
            deadline = time.time() + 10
            after = {}
            while time.time() < deadline:
                s = status()
                if s["pid"] in before:
                    after[s["pid"]] = s["hub"]["cid_duplicates"]
                if all(after.get(pid) == v + 1 for pid, v in before.items()):
                    break
                time.sleep(0.05)
            assert after, (before, after)
            assert all(v == before[pid] + 1 for pid, v in after.items()), (before, after)
            s = status()
            assert isinstance(s["hub"]["direct_cids"], int), s["hub"]
            bus_id = clients[0].welcome.get("bus")
            assert bus_id and s["bus"]["id"] == bus_id, (clients[0].welcome, s["bus"])
        finally:
            await close_all(clients)
    run(go(), timeout=50)


def test_page_has_a_place_for_every_figure_of_the_json():
    """The HTML shell and its scripts name every figure the JSON has (the
    scripts draw them; the browser test checks the values)."""
    page = get("/ws/status?format=html")[2].decode()
    js = get("/ws/status?asset=status.js")[2].decode()
    extra = get("/ws/status?asset=status-extra.js")[2].decode()
    for testid in ("apps-table", "per-ip", "bus", "hub", "webhooks", "backend", "capacity"):
        assert f'data-testid="{testid}"' in page, testid
    assert page.index("?asset=status-extra.js") < page.index("?asset=status.js"), "status-extra.js must load first"
    s = status()
    for key in chat(s):
        if key != "closes":
            assert f'"{key}"' in js, f"status.js does not show apps.*.{key}"
    for key in ("cid_duplicates", "direct_cids", "id"):
        assert f"{key}:" in js, f"status.js has no label for {key}"
    for key in ("sent_batches", "sent_events", "failed_attempts", "dropped_events", "targets"):
        assert f"{key}:" in extra, f"status-extra.js has no label for webhooks.{key}"
    for key in s["capacity"]:
        assert f"{key}:" in extra, f"status-extra.js has no label for capacity.{key}"
    for key in ("requests", "opens_refused", "channels_here", "subscriptions_here", "failures"):
        assert key in extra, f"status-extra.js does not show backend.{key}"
    assert "innerHTML" not in js + extra and "insertAdjacentHTML" not in js + extra, "figures must go in as text"
