#!/usr/bin/python3
"""Observes the real Pushpin's WebSocket-over-HTTP behaviour, case by case,
and prints what the backend received and what the client saw. This is how
the notes in docs/backend.md were made; run it again to check them:

    /usr/bin/python3 tests/backend/observe_pushpin.py [case ...]

Every case uses a ScriptedBackend (exact header order and case, body bytes)
behind a private Pushpin (pushpin_ref.Pushpin) on free loopback ports.
"""
import json
import struct
import sys
import time

from pushpin_ref import Pushpin, decode_jwt
from rawws import RawWs, OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE
from scripted_backend import CT, ScriptedBackend, event

OK_OPEN = (200, [("Content-Type", CT), ("Sec-WebSocket-Extensions", "grip")], event("OPEN"))


class Script:
    """OPEN → `open_answer`; a TEXT whose content is a key of `replies` gets
    that answer; any other request: 200 with an echo of its TEXT events as m:."""

    def __init__(self, open_answer=OK_OPEN, replies=None):
        self.open_answer = open_answer
        self.replies = replies or {}

    def __call__(self, req):
        evs = req["events"] or []
        names = [e[0] for e in evs]
        if "OPEN" in names:
            return self.open_answer
        for name, content in evs:
            if name == "TEXT" and content is not None and content.decode() in self.replies:
                r = self.replies[content.decode()]
                if callable(r):
                    return r()
                return r
        out = b""
        for name, content in evs:
            if name == "TEXT":
                out += event("TEXT", b"m:" + (content or b""))
            elif name == "CLOSE":
                out += event("CLOSE", content)
        return (200, [("Content-Type", CT)], out)


def show_requests(be, skip=0):
    for r in be.requests[skip:]:
        print("  >> %s %s" % (r["method"], r["path"]))
        for k, v in r["headers"]:
            if k == "Grip-Sig":
                v = "%s  claims=%s" % (v[:20] + "...", decode_jwt(v))
            print("     %s: %s" % (k, v))
        print("     body=%r" % r["body"])


def frames(ws, n=None, timeout=3.0):
    ws.sock.settimeout(timeout)
    out = ws.recv_until_eof(limit=n or 50)
    return out


def case_headers(pp, be):
    be.responder = Script()
    ws = RawWs(pp.http_port, "/p/a%20b?x=1&y=%C3%A9", headers=[
        ("Origin", "http://example.com"), ("Cookie", "a=1"), ("Authorization", "Bearer t"),
        ("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ("Meta-Evil", "1"), ("Grip-Evil", "1"), ("Grip-Sig", "forged"), ("Connection-Id", "mine"),
        ("X-Forwarded-For", "1.2.3.4"), ("Keep-Alive", "5"), ("Accept", "text/x"),
        ("x-lower-case", "v"), ("X-Dup", "1"), ("X-Dup", "2"), ("Content-Type", "text/x")])
    print("  client got %d %s" % (ws.status, ws.headers))
    ws.send(OP_TEXT, "")
    ws.send(OP_TEXT, "h\u00e9")
    ws.send(OP_PING, b"")
    ws.send(OP_PONG, b"pp")
    ws.send(OP_BINARY, b"")
    print("  frames:", frames(ws, 2, 2))
    ws.send_close(1000, b"done")
    print("  after close:", frames(ws, 3, 2))
    ws.close()
    time.sleep(0.5)
    print("  backend port %d, pushpin port %d" % (be.port, pp.http_port))
    show_requests(be)


def case_batch(pp, be):
    be.responder = Script(replies={"slow": lambda: (time.sleep(1.5), (200, [("Content-Type", CT)], event("TEXT", "m:slow")))[1]})
    ws = RawWs(pp.http_port, "/b")
    ws.send(OP_TEXT, "slow")
    time.sleep(0.3)
    for i in range(3):
        ws.send(OP_TEXT, "m%d" % i)
    ws.send(OP_BINARY, b"\x00\xff")
    print("  frames:", frames(ws, 5, 4))
    ws.close()
    time.sleep(1)
    show_requests(be)


def case_disconnect(pp, be):
    be.responder = Script()
    ws = RawWs(pp.http_port, "/d")
    ws.send(OP_TEXT, "x")
    print("  frames:", frames(ws, 1, 2))
    ws.close()   # TCP close, no close frame
    time.sleep(1.5)
    show_requests(be)


def case_open_answers(pp, be):
    answers = {
        "reject 403": (403, [("Content-Type", "text/plain"), ("X-Why", "no")], b"go away\n"),
        "200 text/plain": (200, [("Content-Type", "text/plain")], b"OPEN\r\n"),
        "200 empty": (200, [("Content-Type", CT)], b""),
        "200 empty + Keep-Alive-Interval": (200, [("Content-Type", CT), ("Keep-Alive-Interval", "5")], b""),
        "TEXT first": (200, [("Content-Type", CT)], event("TEXT", "m:x") + event("OPEN")),
        "OPEN 0": (200, [("Content-Type", CT)], b"OPEN 0\r\n\r\n"),
        "OPEN + text + headers": (200, [("Content-Type", CT), ("Sec-WebSocket-Protocol", "chat"),
                                       ("X-Custom", "1"), ("Set-Meta-A", "b"),
                                       ("Sec-WebSocket-Extensions", 'grip; message-prefix=""')],
                                  event("OPEN") + event("TEXT", "hello")),
        "malformed": (200, [("Content-Type", CT)], b"OPEN\r\nTEXT zz\r\nx\r\n"),
        "no answer": None,
        "500": (500, [("Content-Type", "text/html")], b"<h1>boom</h1>"),
        "ctype with params": (200, [("Content-Type", CT + "; charset=utf-8")], event("OPEN")),
    }
    for name, ans in answers.items():
        be.responder = Script(open_answer=ans)
        n0 = len(be.requests)
        try:
            ws = RawWs(pp.http_port, "/o", headers=[("Sec-WebSocket-Protocol", "chat")], timeout=3)
        except OSError as e:
            print("  [%s] -> no handshake answer within 3 s (%s)" % (name, type(e).__name__))
            continue
        print("  [%s] -> %d %s body=%r" % (name, ws.status, ws.headers, ws.body))
        if ws.status == 101:
            ws.send(OP_TEXT, "after")
            print("     frames:", frames(ws, 2, 2))
        ws.close()
        time.sleep(0.3)
        print("     backend got %d request(s)" % (len(be.requests) - n0))


def case_prefix(pp, be):
    for ext in ['grip; message-prefix="p:"', "grip; message-prefix=p:", 'grip; message-prefix=""',
                "grip", "grip, permessage-deflate", "GRIP"]:
        be.responder = Script(
            open_answer=(200, [("Content-Type", CT), ("Sec-WebSocket-Extensions", ext)], event("OPEN")),
            replies={"go": (200, [("Content-Type", CT)],
                            event("TEXT", "p:one") + event("TEXT", "m:two") + event("TEXT", "three")
                            + event("BINARY", b"m:bin") + event("BINARY", b"raw")
                            + event("BINARY", b"c:{}") + event("TEXT", "c:not json")
                            + event("TEXT", "c:{\"type\":\"nope\"}") + event("TEXT", "m:end"))})
        ws = RawWs(pp.http_port, "/prefix")
        ws.send(OP_TEXT, "go")
        print("  [%s] 101 headers %s" % (ext, ws.headers))
        print("     frames:", frames(ws, 9, 1.5))
        ws.close()
        time.sleep(0.2)


def case_events(pp, be):
    bodies = {
        "lowercase hex": event("TEXT", "m:" + "x" * 20).replace(b"TEXT 16", b"TEXT 16"),
        "uppercase hex": b"TEXT 1A\r\nm:" + b"y" * 24 + b"\r\n",
        "TEXT without length": b"TEXT\r\n",
        "length beyond body": b"TEXT 10\r\nm:short\r\n",
        "missing CRLF after content": b"TEXT 3\r\nm:aXX",
        "no final CRLF": b"TEXT 3\r\nm:a",
        "unknown event": b"FOO 3\r\nabc\r\nTEXT 3\r\nm:b\r\n",
        "lowercase name": b"text 3\r\nm:c\r\n",
        "0x prefix": b"TEXT 0x3\r\nm:d\r\n",
        "PING": b"PING 2\r\npp\r\nPONG\r\n",
        "DISCONNECT": b"DISCONNECT\r\n",
        "CLOSE no code": b"CLOSE\r\n",
        "CLOSE 1 byte": b"CLOSE 1\r\nx\r\n",
        "OPEN again": b"OPEN\r\n",
        "empty body": b"",
        "500": None,
    }
    for name, body in bodies.items():
        ans = (500, [("Content-Type", "text/plain")], b"err") if body is None else (200, [("Content-Type", CT)], body)
        be.responder = Script(replies={"go": ans})
        ws = RawWs(pp.http_port, "/ev")
        ws.send(OP_TEXT, "go")
        fr = frames(ws, 4, 1.5)
        print("  [%s] frames: %s" % (name, fr))
        ws.close()
        time.sleep(0.2)


def case_controls(pp, be):
    ctl = lambda obj: (200, [("Content-Type", CT)], event("TEXT", "c:" + json.dumps(obj)))
    be.responder = Script(replies={
        "sub": ctl({"type": "subscribe", "channel": "ch"}),
        "setmeta": ctl({"type": "set-meta", "name": "foo", "value": "bar"}),
        "ka": ctl({"type": "keep-alive", "content": "ka!", "timeout": 2}),
        "kabin": ctl({"type": "keep-alive", "content-bin": "AAE=", "timeout": 2, "mode": "interval"}),
        "kaoff": ctl({"type": "keep-alive"}),
        "delayed": ctl({"type": "send-delayed", "content": "later", "timeout": 1}),
        "session": ctl({"type": "session", "id": "s1"}),
        "detach": ctl({"type": "detach"}),
    })
    ws = RawWs(pp.http_port, "/ctl")
    ws.send(OP_TEXT, "sub")
    time.sleep(0.5)
    print("  publish:", pp.publish({"items": [{"channel": "ch", "formats": {"ws-message": {"content": "pub1"}}}]}))
    print("  frames:", frames(ws, 1, 2))
    n0 = len(be.requests)
    ws.send(OP_TEXT, "setmeta")
    ws.send(OP_TEXT, "next")
    print("  frames:", frames(ws, 1, 2))
    print("  after set-meta, Meta headers:", [h for h in be.requests[-1]["headers"] if h[0].lower().startswith("meta-")])
    ws.send(OP_TEXT, "ka")
    t0 = time.time()
    print("  keep-alive frames (idle 5 s):", [(round(time.time() - t0, 1), f) for f in frames(ws, 3, 5)])
    ws.send(OP_TEXT, "kabin")
    print("  keep-alive content-bin interval:", frames(ws, 2, 5))
    ws.send(OP_TEXT, "kaoff")
    print("  keep-alive off:", frames(ws, 2, 3))
    ws.send(OP_TEXT, "delayed")
    t0 = time.time()
    print("  send-delayed:", frames(ws, 1, 3), round(time.time() - t0, 1))
    n0 = len(be.requests)
    ws.send(OP_TEXT, "detach")
    time.sleep(0.5)
    ws.send(OP_TEXT, "after detach")
    time.sleep(0.5)
    print("  publish after detach:", pp.publish({"items": [{"channel": "ch", "formats": {"ws-message": {"content": "pub2"}}}]}))
    print("  frames:", frames(ws, 2, 2))
    print("  backend after detach:")
    show_requests(be, n0)
    ws.send_close(1000)
    print("  close after detach:", frames(ws, 2, 2))
    ws.close()


def case_publish(pp, be):
    be.responder = Script(replies={"sub": (200, [("Content-Type", CT)],
                                           event("TEXT", 'c:{"type":"subscribe","channel":"p"}'))})
    bodies = [
        {"items": [{"channel": "p", "formats": {"ws-message": {"content": "t"}}}]},
        {"items": [{"channel": "p", "formats": {"ws-message": {"content-bin": "AAEC"}}}]},
        {"items": [{"channel": "p", "formats": {"ws-message": {"content-bin": "AAEC", "type": "text"}}}]},
        {"items": [{"channel": "p", "formats": {"ws-message": {"type": "ping"}}}]},
        {"items": [{"channel": "p", "ws-message": {"content": "no formats key"}}]},
        {"items": [{"channel": "p", "formats": {"http-stream": {"content": "s"}}}]},
        {"items": [{"channel": "p", "formats": {"ws-message": {"content": "a"}}},
                   {"channel": "p", "id": "2", "prev-id": "1", "formats": {"ws-message": {"content": "b"}}}]},
        {"items": [{"channel": "p", "formats": {"ws-message": {"action": "close", "code": 4001, "reason": "pub bye"}}}]},
    ]
    for body in bodies:
        ws = RawWs(pp.http_port, "/pub")
        ws.send(OP_TEXT, "sub")
        time.sleep(0.4)
        print("  publish %s -> %s" % (json.dumps(body), pp.publish(body)))
        print("     frames:", frames(ws, 3, 1.5))
        ws.close()
    ws = RawWs(pp.http_port, "/pub")
    ws.send(OP_TEXT, "sub")
    time.sleep(0.4)
    print("  close without code ->", pp.publish({"items": [{"channel": "p", "formats": {"ws-message": {"action": "close"}}}]}))
    print("     frames:", frames(ws, 3, 1.5))
    ws.close()
    for bad in [b"not json", b"[]", b"{}", b'{"items":{}}', b'{"items":[{}]}',
                b'{"items":[{"channel":"p"}]}', b'{"items":[{"channel":"p","formats":{}}]}',
                b'{"items":[{"channel":"p","formats":{"ws-message":{}}}]}',
                b'{"items":[{"channel":"p","formats":{"ws-message":{"content":1}}}]}',
                b'{"items":[{"channel":"p","formats":{"ws-message":{"action":"bogus"}}}]}',
                b'{"items":[{"channel":"","formats":{"ws-message":{"content":"x"}}}]}',
                b'{"items":[{"channel":"p","formats":{"ws-message":{"content-bin":"!!"}}}]}',
                b'{"items":[{"channel":"p","formats":{"ws-message":{"action":"close","code":"x"}}}]}']:
        print("  bad %r -> %s" % (bad, pp.publish(bad)))


def case_failures(pp, be):
    be.responder = Script(replies={
        "500": (500, [("Content-Type", "text/plain")], b"err"),
        "ctype": (200, [("Content-Type", "text/plain")], event("TEXT", "m:x")),
        "malformed": (200, [("Content-Type", CT)], b"TEXT zz\r\n"),
        "drop": None,
        "slow": lambda: (time.sleep(8), (200, [("Content-Type", CT)], event("TEXT", "m:late")))[1],
    })
    for what in ["500", "ctype", "malformed", "drop", "slow"]:
        n0 = len(be.requests)
        ws = RawWs(pp.http_port, "/f")
        t0 = time.time()
        ws.send(OP_TEXT, what)
        fr = frames(ws, 3, 12)
        print("  [%s] after %.1fs frames: %s" % (what, time.time() - t0, fr))
        ws.close()
        time.sleep(1)
        print("     backend requests: %s" % [r["body"] for r in be.requests[n0:]])


def case_keepalive_interval(pp, be):
    """Keep-Alive-Interval: 3 asks for an empty request when idle (Pushpin: at least 20 s)."""
    orig = Script(open_answer=(200, [("Content-Type", CT), ("Keep-Alive-Interval", "3"),
                                     ("Sec-WebSocket-Extensions", "grip")], event("OPEN")))
    t0 = time.time()

    def stamp(req):
        req["t"] = time.time() - t0
        return orig(req)
    be.responder = stamp
    ws = RawWs(pp.http_port, "/kai")
    time.sleep(45)
    for r in be.requests:
        print("  t=%.1f body=%r" % (r["t"], r["body"]))
    ws.close()


def case_close(pp, be):
    """Client close the backend does not answer / answers with another code;
    backend CLOSE then more events; a client message after the backend's CLOSE."""
    for name, ans in [("unanswered", (200, [("Content-Type", CT)], b"")),
                      ("other code", (200, [("Content-Type", CT)], event("CLOSE", struct.pack("!H", 4005) + b"x"))),
                      ("no code", (200, [("Content-Type", CT)], event("CLOSE")))]:
        n0 = len(be.requests)
        be.responder = Script()
        ws = RawWs(pp.http_port, "/c")
        time.sleep(0.2)
        be.responder = lambda req, ans=ans: ans
        ws.send_close(1000, b"bye")
        print("  [%s] frames: %s" % (name, frames(ws, 3, 3)))
        ws.close()
        time.sleep(0.5)
        print("     backend got: %s" % [r["body"] for r in be.requests[n0:]])
    n0 = len(be.requests)
    be.responder = Script(replies={"go": (200, [("Content-Type", CT)], event("TEXT", "m:a")
                                          + event("CLOSE", struct.pack("!H", 4000)) + event("TEXT", "m:b"))})
    ws = RawWs(pp.http_port, "/c")
    ws.send(OP_TEXT, "go")
    print("  [backend CLOSE mid-body] frames: %s" % frames(ws, 3, 2))
    ws.send(OP_TEXT, "late")
    ws.send_close(4000)
    print("     then: %s" % frames(ws, 3, 2))
    ws.close()
    time.sleep(0.5)
    print("     backend got: %s" % [r["body"] for r in be.requests[n0:]])


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}


def main(names):
    names = names or [n for n in CASES if n not in ("keepalive_interval",)]
    for name in names:
        print("=== %s" % name)
        be = ScriptedBackend(Script())
        zurl_timeout = 5 if name == "failures" else 600
        with be, Pushpin(be.port, zurl_timeout_s=zurl_timeout) as pp:
            CASES[name](pp, be)


if __name__ == "__main__":
    main(sys.argv[1:])
