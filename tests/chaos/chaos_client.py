"""One chaos-run chat user (docs/chat-protocol.md).

"Sent" means the user pressed Enter: the message goes into an outbox and
is sent with its client id (`cid`), one at a time (the next one only after
the previous was acknowledged), so a user's messages keep their order. A
message is acknowledged when it comes back as a room event (its echo, or
the history after a reconnect); it is reported failed when that has not
happened FAIL_AFTER seconds after Enter. On a reconnect the client joins
with `since` = the largest seq it saw and `bus` = the id of the bus that
numbered it (from the welcome; docs/chat-protocol.md, "Resume after a
reconnect"), takes its own messages found in the history as acknowledged, and resends the rest
(same cid). After a hard stop of a shm server the new bus has another id:
the server answers such a join with everything the room kept and
complete:false, and the client counts from the new bus's seqs. A message
that went out on the old bus and was not acknowledged is then reported
failed, not sent again: the new bus does not know its cid, and the old one
may have published it just before the stop (docs/chat-protocol.md, "Message
ids": a cid is remembered by the bus that took it).

Everything the client receives about its room goes into `log`, compact
lists the checker reads (tests/chaos/chaos_check.py):

  ["conn", epoch, port, pid, since, t, id, local_port]
                                             a connection was opened
  ["hist", epoch, since, complete, join_seq, first_seq]
                                             the history answer of a join
  ["e", epoch, seq, kind, what, src]         a room event: kind "m" (what =
                                             text) or "s" (what = event:name);
                                             src "h" (history) or "l" (live)
  ["err", code, t]                           an error frame
  ["send", n, attempt, t]                    the user's message n went out
  ["drop", epoch, t]                         the connection logged by the last
                                             "conn" ended (closed, cut, refused)
  ["stall", pid, t]                          no room event for STALL_AFTER s on a
                                             live connection
(t: milliseconds since the run started, one base for all clients; "conn", "hist" and message
events carry it last too).
"""
import asyncio
import json
import random
import time

import websockets

FAIL_AFTER = 45.0     # seconds from Enter to "failed" (the UI would say so)
ACK_TIMEOUT = 15.0    # no echo on a live connection: resend (same cid)
RETRY_AFTER = 1.0     # after `unavailable` / `rate-limited`
STALL_AFTER = 10.0    # a live, joined connection without any room event this long is stuck
T0 = time.monotonic()  # one time base for every client's log


def now_ms():
    """Milliseconds since the chaos run started (every log's time base)."""
    return int((time.monotonic() - T0) * 1000)


class Msg:
    def __init__(self, n, text, cid):
        self.n, self.text, self.cid = n, text, cid
        self.t_enter = time.monotonic()
        self.state = "pending"   # pending | acked | failed
        self.seq = None
        self.epoch = None
        self.sends = 0
        self.sent_bus = None      # the bus (welcome's id) of the last send
        self.failed_why = None    # "timeout" or "bus" (sent on a bus that is gone)
        self.acked_after_fail = False


class Client:
    def __init__(self, run, idx, room, ports, interval):
        self.chaos = run
        self.name = f"u{idx:03d}"
        self.room = room
        self.ports = ports
        self.port = ports[idx % len(ports)]
        self.interval = interval
        self.log = []
        self.msgs = []
        self.by_text = {}
        self.outbox = []          # pending messages, in Enter order; [0] is in flight
        self.sent_at = None       # when outbox[0] went out on this connection
        self.hold_until = 0.0     # no (re)send before this (after `unavailable`)
        self.epoch = 0
        self.last_seq = None      # largest seq seen in self.epoch
        self.bus = None           # the id of the bus that numbered last_seq (welcome's "bus")
        self.ws = None
        self.connected = False
        self.joined_once = False
        self.sending = False
        self.stopping = False
        self.connects = 0
        self.stats = {"reconnects": 0, "resends": 0, "ack_timeouts": 0, "retries": 0,
                      "restarts_seen": 0, "connect_failures": 0, "unconfirmed": 0}
        self.errors = {}
        self.last_event = None    # monotonic time of the last room event on this connection
        self.stalled = False      # this connection was reported stuck
        self.pid = None
        self.conn_id = None
        self.conn_open = False    # a "conn" was logged and its "drop" not yet

    # --- connection loop -------------------------------------------------
    async def run(self):
        ticker = asyncio.create_task(self.tick())
        backoff = 0.2
        try:
            while not self.stopping:
                url = f"ws://127.0.0.1:{self.port}/ws/chat?name={self.name}"
                try:
                    ws = await websockets.connect(url, open_timeout=10, ping_interval=15,
                                                  ping_timeout=30, close_timeout=2,
                                                  compression=None, max_size=1 << 22)
                except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake,
                        websockets.ConnectionClosed):
                    self.stats["connect_failures"] += 1
                    # another server, if there is one (a load balancer would)
                    self.port = random.choice(self.ports)
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.2
                try:
                    await self.session(ws)
                except (websockets.ConnectionClosed, OSError, asyncio.TimeoutError):
                    pass
                finally:
                    self.connected = False
                    self.ws = None
                    self.sent_at = None
                    if self.conn_open:
                        self.conn_open = False
                        self.log.append(["drop", self.epoch, self.now()])
                    asyncio.ensure_future(close_quietly(ws))
                if not self.stopping:
                    self.stats["reconnects"] += 1
                    await asyncio.sleep(random.uniform(0.05, 0.5))
        finally:
            ticker.cancel()

    async def session(self, ws):
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if welcome.get("type") != "welcome":
            raise OSError(f"no welcome: {welcome}")
        # The bus epoch is the harness's ground truth for the checker; the
        # client itself learns of a restarted bus the way a page does: the
        # welcome names another bus (or, from a server without bus ids, its
        # own join comes back with a seq not above its since).
        epoch = self.chaos.epoch
        self.connects += 1
        self.epoch = epoch
        since = self.last_seq
        bus = welcome.get("bus")
        join = {"type": "join", "room": self.room, "name": self.name}
        if since is not None:
            join["since"] = since
            if self.bus is not None:
                join["bus"] = self.bus
        self.pid = welcome.get("pid")
        self.conn_id = welcome.get("id")
        try:
            local_port = ws.local_address[1]  # the error log's "[client 127.0.0.1:PORT]"
        except (TypeError, IndexError, AttributeError):
            local_port = None
        self.log.append(["conn", epoch, self.port, self.pid, since, self.now(), welcome.get("id"), local_port])
        self.conn_open = True
        await ws.send(json.dumps(join))
        hist = myjoin = None
        while True:
            f = json.loads(await asyncio.wait_for(ws.recv(), 20))
            t = f.get("type")
            if t == "history" and hist is None and f.get("room") == self.room:
                hist = f
            elif t == "system" and hist is not None and myjoin is None and f.get("event") == "join":
                myjoin = f
            elif t == "presence" and myjoin is not None and "you" in f:
                break
            elif t == "error":
                self.on_error(f)
                raise OSError(f"join refused: {f}")
        jseq = myjoin["seq"]
        evs = hist.get("messages", [])
        moved = since is not None and self.bus is not None and bus is not None and bus != self.bus
        restart = moved or (since is not None and jseq <= since)
        if restart:
            # Another bus, counting from 1 again: the server ignored since.
            self.stats["restarts_seen"] += 1
            self.last_seq = None
        self.bus = bus
        self.fail_sent_on_other_bus(bus)
        self.log.append(["hist", epoch, since, bool(hist.get("complete")), jseq,
                         evs[0]["seq"] if evs else None, self.now()])
        for e in evs:
            self.on_event(e, epoch, "h")
        self.on_event(myjoin, epoch, "l")
        self.ws = ws
        self.connected = True
        self.joined_once = True
        self.last_event = time.monotonic()
        self.stalled = False
        if self.outbox:
            self.stats["resends"] += 1
        await self.send_head()
        async for raw in ws:
            f = json.loads(raw)
            t = f.get("type")
            if t in ("message", "system"):
                if f.get("room") == self.room:
                    self.on_event(f, epoch, "l")
                    if t == "message" and self.sent_at is None and self.outbox:
                        await self.send_head()
            elif t == "error":
                self.on_error(f)

    # --- events ----------------------------------------------------------
    def on_event(self, f, epoch, src):
        seq = f.get("seq")
        self.last_event = time.monotonic()
        if f.get("type") == "message":
            text = f.get("text", "")
            self.log.append(["e", epoch, seq, "m", text, src, self.now()])
            m = self.by_text.get(text)
            if m is not None:
                self.on_ack(m, seq, epoch)
        else:
            self.log.append(["e", epoch, seq, "s", f"{f.get('event')}:{f.get('name')}", src])
        if seq is not None and (self.last_seq is None or seq > self.last_seq):
            self.last_seq = seq

    def fail_sent_on_other_bus(self, bus):
        """Unacknowledged messages that went out on another bus: the bus
        that took them is gone, and with it what it knew of their cids.
        They may have been published there just before the stop; sending
        them again here would post them a second time. The user is told
        ("not confirmed") instead; a Retry would be the user's choice."""
        if bus is None:
            return
        for m in list(self.outbox):
            if m.sent_bus is not None and m.sent_bus != bus:
                self.stats["unconfirmed"] += 1
                self.fail(m, "bus")

    def fail(self, m, why):
        m.state, m.failed_why = "failed", why
        if self.outbox and self.outbox[0] is m:
            self.sent_at = None
        self.outbox.remove(m)

    def on_ack(self, m, seq, epoch):
        if m.state == "acked":
            return  # the checker counts a second copy from the log
        if m.state == "failed":
            m.acked_after_fail = True
        m.state, m.seq, m.epoch = "acked", seq, epoch
        if m in self.outbox:
            if self.outbox[0] is m:
                self.sent_at = None
            self.outbox.remove(m)

    def on_error(self, f):
        code = f.get("code", "?")
        self.errors[code] = self.errors.get(code, 0) + 1
        self.log.append(["err", code, self.now()])
        if code in ("unavailable", "rate-limited") and self.sent_at is not None:
            # the message in flight was refused: the ticker sends it again
            self.stats["retries"] += 1
            self.sent_at = None
            self.hold_until = time.monotonic() + RETRY_AFTER

    def now(self):
        return now_ms()

    # --- sending ---------------------------------------------------------
    async def send_head(self):
        if not self.connected or not self.outbox or self.ws is None:
            return
        if time.monotonic() < self.hold_until:
            return
        m = self.outbox[0]
        m.sends += 1
        m.sent_bus = self.bus
        self.sent_at = time.monotonic()
        self.log.append(["send", m.n, m.sends, self.now()])
        try:
            await self.ws.send(json.dumps({"type": "message", "room": self.room,
                                           "text": m.text, "cid": m.cid}))
        except (websockets.ConnectionClosed, OSError):
            pass  # the reader notices; the message stays in the outbox

    def press_enter(self):
        n = len(self.msgs) + 1
        m = Msg(n, f"{self.name}:{n}", f"{self.name}-{n}")
        self.msgs.append(m)
        self.by_text[m.text] = m
        self.outbox.append(m)

    async def tick(self):
        next_press = time.monotonic() + random.uniform(0, self.interval)
        while True:
            await asyncio.sleep(random.uniform(0.8, 1.2))
            now = time.monotonic()
            for m in list(self.outbox):
                if now - m.t_enter > FAIL_AFTER:
                    self.fail(m, "timeout")
            if self.sent_at is not None and now - self.sent_at > ACK_TIMEOUT:
                self.stats["ack_timeouts"] += 1
                self.sent_at = None
            if self.sending and self.connected and not self.stalled and now - self.last_event > STALL_AFTER:
                # Rooms of 40 talk several times a second: this connection
                # is open but gets nothing. Noted, and left as it is, so the
                # run shows how long the server keeps it so.
                self.stalled = True
                conn = next(e for e in reversed(self.log) if e[0] == "conn")
                self.log.append(["stall", self.pid, self.now(), self.conn_id, conn[7]])
            if not self.sending:
                next_press = max(next_press, now)
            elif now >= next_press:
                self.press_enter()
                next_press = now + self.interval * random.uniform(0.5, 1.5)
            if self.sent_at is None and self.outbox:
                await self.send_head()

    def settled(self):
        return self.connected and not self.outbox

    def stop(self):
        self.stopping = True
        self.sending = False
        if self.ws is not None:
            asyncio.ensure_future(close_quietly(self.ws))


async def close_quietly(ws):
    try:
        await ws.close()
    except Exception:
        pass
