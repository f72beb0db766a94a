"""A chat-protocol client for the integration tests (docs/chat-protocol.md),
on top of python3-websockets (asyncio), plus the checks the chat suites
share: total order per room, tokens, the publish API and the status page.

Every frame a client receives is kept (ChatClient.frames) and the room
events (message/system) are also kept per room in arrival order
(ChatClient.events[room]), so a test can wait for one thing and still check
everything that came before it."""
import asyncio
import hashlib
import hmac
import json
import os
import time
import urllib.parse

import websockets

from wsclient import read_http_response


class Closed(Exception):
    """The server closed the WebSocket; .code/.reason of its close frame."""

    def __init__(self, code, reason):
        super().__init__(f"connection closed with {code} {reason!r}")
        self.code, self.reason = code, reason


_stage = ["start"]


def stage(text):
    """Notes how far a test got, for the message when run() times out."""
    _stage[0] = text


def run(coro, timeout=30):
    """Runs a coroutine with an overall bound."""
    stage("start")
    t0 = time.time()
    try:
        return asyncio.run(asyncio.wait_for(coro, timeout))
    except asyncio.TimeoutError:
        raise TimeoutError(f"gave up after {time.time() - t0:.1f}s at stage: {_stage[0]}") from None


def uniq(prefix):
    """A room name no other test uses (rooms are server-wide and persist)."""
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


async def close_all(clients):
    """Closes every client at once; errors (already closed) are ignored."""
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def run_with_clients(scenario, timeout=30):
    """run(scenario(clients)) for a coroutine function taking a list: every
    client it puts in the list is closed afterwards, also when it fails.
    Returns what the scenario returns."""
    async def go():
        clients = []
        try:
            return await scenario(clients)
        finally:
            await close_all(clients)
    return run(go(), timeout)


def make_token(secret, uid, expiry=None):
    """uid|expiry|hex(HMAC-SHA256(secret, "uid|expiry")), as the docs say."""
    if expiry is None:
        expiry = int(time.time()) + 3600
    signed = f"{uid}|{expiry}"
    sig = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
    return f"{signed}|{sig}"


class ChatClient:
    def __init__(self, ws, welcome):
        self.ws = ws
        self.welcome = welcome
        self.you = welcome.get("you")
        self.pid = welcome.get("pid")
        self.id = welcome.get("id")
        self.bus = welcome.get("bus")  # the bus id (docs/chat-protocol.md, "Resume after a reconnect")
        self.frames = [welcome]   # every frame received, in order
        self.pos = 1              # frames before pos were consumed by next()
        self.events = {}          # room -> live message/system events, in order
        self.histories = {}       # room -> list of history frames received
        self.names = {}           # room -> our name there (presence.you)
        self.closed = None        # (code, reason) once the server closed
        self.since_used = set()   # rooms joined with since (history is not the plain one)

    @classmethod
    async def connect(cls, port, path="/ws/chat", name=None, token=None, query=None,
                      subprotocols=None, timeout=5.0, **kw):
        params = dict(query or {})
        if name is not None:
            params["name"] = name
        if token is not None:
            params["token"] = token
        url = f"{'wss' if kw.get('ssl') else 'ws'}://127.0.0.1:{port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        kw.setdefault("max_queue", None)
        kw.setdefault("max_size", 1 << 24)
        kw.setdefault("ping_interval", None)
        kw.setdefault("close_timeout", 3)
        ws = await websockets.connect(url, subprotocols=subprotocols, open_timeout=timeout, **kw)
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout)
        except BaseException:
            await ws.close()
            raise
        welcome = json.loads(raw)
        assert welcome.get("type") == "welcome", f"first frame is not a welcome: {raw!r}"
        return cls(ws, welcome)

    # --- sending -------------------------------------------------------------

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def message(self, room, text):
        await self.send({"type": "message", "room": room, "text": text})

    async def join(self, room, name=None, since=None, bus=None, timeout=5.0):
        """Joins and returns (history, own join event, presence). bus: the
        id of the bus that numbered since (sent only with since)."""
        cmd = {"type": "join", "room": room}
        if name is not None:
            cmd["name"] = name
        if since is not None:
            cmd["since"] = since
            self.since_used.add(room)
            if bus is not None:
                cmd["bus"] = bus
        await self.send(cmd)
        return await self.joined(room, timeout)

    async def joined(self, room, timeout=5.0):
        """The answer to a join: history, then our join event, then presence."""
        h = await self.next(lambda f: f.get("type") in ("history", "error") and f.get("room") == room,
                            timeout)
        assert h["type"] == "history", f"join of {room!r} refused: {h}"
        j = await self.next(lambda f: f.get("room") == room, timeout)
        assert j.get("type") == "system" and j.get("event") == "join", \
            f"after the history of {room!r} expected our join event, got {j}"
        p = await self.next(lambda f: f.get("room") == room, timeout)
        assert p.get("type") == "presence", f"after our join event expected presence, got {p}"
        assert p.get("you") == j.get("name"), f"presence.you {p.get('you')!r} != join name {j}"
        self.names[room] = p["you"]
        return h, j, p

    async def leave(self, room):
        await self.send({"type": "leave", "room": room})

    async def close(self, code=1000):
        try:
            await asyncio.wait_for(self.ws.close(code), 5)
        except Exception:  # noqa: B902 - best effort
            pass

    # --- receiving -----------------------------------------------------------

    async def _read(self, timeout):
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as e:
            rcvd = e.rcvd
            self.closed = (rcvd.code, rcvd.reason) if rcvd else (None, "")
            raise Closed(*self.closed) from None
        if isinstance(raw, bytes):
            raise AssertionError(f"binary frame from the chat: {raw[:60]!r}")
        f = json.loads(raw)
        self.frames.append(f)
        t = f.get("type")
        if t in ("message", "system"):
            self.events.setdefault(f.get("room"), []).append(f)
        elif t == "history":
            self.histories.setdefault(f.get("room"), []).append(f)
        return f

    async def next(self, pred=None, timeout=5.0, what=None):
        """The next not yet consumed frame matching pred (the frames before
        it are consumed too, but stay in .frames/.events)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self.pos < len(self.frames):
                f = self.frames[self.pos]
                self.pos += 1
                if pred is None or pred(f):
                    return f
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{self.you}: no {what or 'matching frame'} within {timeout}s; "
                                   f"last frames: {self.frames[-3:]}")
            try:
                await self._read(left)
            except asyncio.TimeoutError:
                raise TimeoutError(f"{self.you}: no {what or 'matching frame'} within {timeout}s; "
                                   f"last frames: {self.frames[-3:]}") from None

    async def expect_error(self, code, timeout=5.0):
        f = await self.next(lambda f: f.get("type") == "error", timeout, what=f"error {code}")
        assert f.get("code") == code, f"expected error {code!r}, got {f}"
        return f

    async def wait_events(self, room, pred, timeout=5.0):
        """Reads until pred(self.events[room]) is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred(self.events.get(room, [])):
            left = deadline - loop.time()
            if left <= 0:
                evs = self.events.get(room, [])
                raise TimeoutError(f"{self.you}: room {room} condition not met within {timeout}s "
                                   f"({len(evs)} events, last {evs[-2:]})")
            try:
                await self._read(left)
            except asyncio.TimeoutError:
                continue

    async def wait_closed(self, timeout=5.0):
        """Reads (and keeps) frames until the server closes; returns (code, reason)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{self.you}: the server did not close within {timeout}s")
            try:
                await self._read(left)
            except Closed as e:
                return e.code, e.reason
            except asyncio.TimeoutError:
                continue

    def texts(self, room):
        return [e["text"] for e in self.events.get(room, []) if e["type"] == "message"]


# --- server config ---------------------------------------------------------------

def chat_location(path, *directives):
    """An Apache <Location> serving the chat hub at path, with directives
    (one a line) of its own, for a test's extra_conf."""
    inner = "".join(f"  {d}\n" for d in directives)
    return f"<Location {path}>\n  SetHandler wsbridge\n  WSBridgeApp chat\n{inner}</Location>\n"


# /ws/fast: the chat with the rate limit lifted, for tests that send quickly.
FAST_CHAT = chat_location("/ws/fast", "WSBridgeRateLimit 1000 1000")


def token_chat(secret, path="/ws/tok"):
    """The chat at path, wanting access tokens signed with secret."""
    return chat_location(path, f"WSBridgeSecret {secret}")


# --- checks ------------------------------------------------------------------

def is_event(e, event, name=None):
    """e is a system join/leave event (of name, if given)."""
    return (e.get("type") == "system" and e.get("event") == event
            and (name is None or e.get("name") == name))


def last_is(event, name=None):
    """A wait_events predicate: the newest event is a join/leave (of name)."""
    return lambda evs: bool(evs) and is_event(evs[-1], event, name)


def n_messages(evs):
    return sum(e.get("type") == "message" for e in evs)


def event_key(e):
    """What identifies an event's content (ts included: it is set once)."""
    return json.dumps(e, sort_keys=True)


def room_order(clients, room):
    """The room's events by seq from every client's view (live and history);
    fails if two clients disagree about one seq. Several leaves may share a
    seq (a dead child): they are kept in the order the clients saw them."""
    by_seq = {}
    for c in clients:
        views = [c.events.get(room, [])] + [h["messages"] for h in c.histories.get(room, [])]
        for evs in views:
            seen = {}
            for e in evs:
                seen.setdefault(e["seq"], []).append(event_key(e))
            for seq, keys in seen.items():
                known = by_seq.setdefault(seq, keys)
                if known != keys:
                    if set(known) <= set(keys) or set(keys) <= set(known):
                        # one view saw a part of a shared seq (joined in between)
                        if len(keys) > len(known):
                            by_seq[seq] = keys
                        continue
                    raise AssertionError(f"room {room}: seq {seq} differs between clients:\n"
                                         f"{known}\n{keys}")
    return [json.loads(k) for seq in sorted(by_seq) for k in by_seq[seq]]


def check_strictly_increasing(events, who):
    seqs = [e["seq"] for e in events]
    for a, b in zip(seqs, seqs[1:]):
        if b < a or (b == a and not all(e["type"] == "system" and e["event"] == "leave"
                                        for e in events if e["seq"] == a)):
            raise AssertionError(f"{who}: seqs not increasing: ...{a}, {b}... in {seqs}")


def check_total_order(clients, room, history_size=100):
    """Every client saw the room's events exactly once, in the one order:
    its live events are the contiguous slice of the room order that starts
    with its own join, and its history is the slice just before it."""
    order = room_order(clients, room)
    keys = [event_key(e) for e in order]
    assert len(set(keys)) == len(keys), f"room {room}: an event appears twice in the room order"
    for c in clients:
        evs = c.events.get(room, [])
        who = f"client {c.you} ({c.id}, pid {c.pid}) in {room}"
        check_strictly_increasing(evs, who)
        mine = [event_key(e) for e in evs]
        assert len(set(mine)) == len(mine), f"{who}: received an event twice"
        if not mine:
            continue
        start = keys.index(mine[0])
        got = keys[start:start + len(mine)]
        if got != mine:
            i = next(i for i, (a, b) in enumerate(zip(got, mine)) if a != b) if len(got) == len(mine) \
                else min(len(got), len(mine))
            raise AssertionError(f"{who}: live events differ from the room order at #{i}: "
                                 f"got {mine[i:i + 2]}, room order {got[i:i + 2]}")
        hists = c.histories.get(room, [])
        if len(hists) == 1 and room not in c.since_used:
            hist = [event_key(e) for e in hists[0]["messages"]]
            want = keys[max(0, start - history_size):start]
            assert hist == want, f"{who}: history is not the last {history_size} events before " \
                f"its join: {len(hist)} events vs {len(want)}"
    return order


# --- HTTP helpers ----------------------------------------------------------------

def http(port, method, path, body=None, headers=None, timeout=5.0):
    """One HTTP/1.1 request; returns (status, headers lower-case, body bytes)."""
    data = body.encode() if isinstance(body, str) else (body or b"")
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(data)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
    status, hdrs, resp, sock = read_http_response(port, raw, timeout=timeout)
    sock.close()
    return status, hdrs, resp


def publish(port, obj, path="/ws/publish", headers=None):
    """POSTs to the publish API; returns (status, parsed JSON body or raw)."""
    body = obj if isinstance(obj, (str, bytes)) else json.dumps(obj)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    status, _, resp = http(port, "POST", path, body, h)
    try:
        return status, json.loads(resp)
    except ValueError:
        return status, resp


def status_json(port, path="/ws/status"):
    status, hdrs, body = http(port, "GET", path)
    assert status == 200, f"status page: {status} {body[:200]!r}"
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    return json.loads(body)
