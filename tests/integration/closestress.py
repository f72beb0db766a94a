"""Many short WebSocket connections against /ws/echo, each ending with the
client's close 1000, timing the server's close reply (issue 16: one close
in about 3,000 went unanswered).

One connection: the handshake, one single-frame text message, its echo, the
client's close 1000, the server's close 1000, then the server's FIN. How the
bytes are grouped into writes varies by connection (MODES): clients may
pipeline the message with the handshake, and the close with the message.

The close reply's latency is measured without the client's own event loop
in it: from the moment the close frame was handed to the kernel (send()) to
the kernel's receive timestamp of the segment that completed the server's
close frame (SO_TIMESTAMPNS), both CLOCK_REALTIME. A busy client (Python on
a shared machine) therefore cannot make the server look slow.

Used by test_close_stress.py; also runs on its own for long runs:

    /usr/bin/python3 tests/integration/closestress.py PORT [COUNT] [CONCURRENCY]
"""
import asyncio
import base64
import os
import random
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# How each connection groups its bytes into writes ("|" separates writes;
# the close reply is timed from the write that carries the close).
MODES = (
    "hs | text | close",        # the client: wait for the 101, then the echo
    "hs | text+close",          # the close in the same write as the message
    "hs+text | close",          # the message pipelined with the handshake
    "hs+text+close",            # everything in one write
    "hs | close",               # a close right after the 101, no message
    "hs+close",                 # a close pipelined with the handshake
    "hs | text/3 | close/3",    # the message and the close each in 3 writes, 2 ms apart
    "hs+text/2+close",          # a write boundary inside the message, the close with its end
)
SPLIT_GAP_S = 0.002

# Linux's SO_TIMESTAMPNS and its control message type (SCM_TIMESTAMPNS).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
CLOSE_WAIT_S = 2.0   # after this the close reply counts as missing
FIN_WAIT_S = 2.0     # the server's FIN after its close frame


def mask(payload, key):
    return bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def frame(opcode, payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    return head + key + mask(payload, key)


def handshake(port):
    key = base64.b64encode(os.urandom(16))
    req = (b"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % (port, key))
    return req


class Conn:
    """A raw non-blocking socket on the loop; every chunk received keeps the
    kernel's receive time."""

    def __init__(self, loop, sock):
        self.loop, self.sock = loop, sock
        self.buf = bytearray()
        self.stamp = 0.0         # kernel receive time of the last chunk
        self.eof = False
        self.error = None
        self.unstamped = 0       # chunks without a kernel timestamp (timed on arrival in Python)
        self.waiter = None
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self):
        try:
            data, anc, _, _ = self.sock.recvmsg(65536, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.error = e
            data, anc = b"", []
        if not data:
            self.eof = True
            self.loop.remove_reader(self.sock.fileno())
        else:
            self.buf += data
            self.stamp = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    self.stamp = sec + nsec / 1e9
            if self.stamp is None:
                self.stamp = time.time()
                self.unstamped += 1
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, deadline):
        """Waits for more input (or EOF) until the monotonic deadline;
        False on timeout."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.waiter = self.loop.create_future()
        try:
            await asyncio.wait_for(self.waiter, left)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self.waiter = None

    def send(self, data):
        t = time.time()
        self.sock.sendall(data)  # small: the socket buffer always takes it at once
        return t

    def close(self):
        if not self.eof:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


def parse_frame(buf):
    """(opcode, payload, length) of the first whole server frame, or None."""
    if len(buf) < 2:
        return None
    n, off = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack("!H", bytes(buf[2:4]))[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack("!Q", bytes(buf[2:10]))[0], 10
    if len(buf) < off + n:
        return None
    return buf[0] & 0x0F, bytes(buf[off:off + n]), off + n


async def one(loop, port, index, mode, rng):
    """Runs one connection; returns its record (a dict)."""
    rec = {"i": index, "mode": mode, "t": time.time(), "result": "ok", "latency": None, "code": None}
    text = None if "text" not in mode else "".join(
        rng.choice("abcdefghij€ü ") for _ in range(rng.choice((1, 5, 60, 125, 126, 200))))
    # Each "|" is a step (sent, then its answers awaited); a step is one or
    # more writes ("/n" cuts a piece into n writes, SPLIT_GAP_S apart).
    parts = []
    for step in mode.split("|"):
        writes = [b""]
        for piece in step.strip().split("+"):
            name, _, n = piece.partition("/")
            data = {"hs": handshake(port), "text": frame(1, text.encode()) if text else b"",
                    "close": frame(8, struct.pack("!H", 1000))}[name]
            n = int(n or 1)
            cut = [len(data) * k // n for k in range(n + 1)]
            writes[-1] += data[:cut[1]]
            writes += [data[cut[k]:cut[k + 1]] for k in range(1, n)]
        parts.append((step.strip(), writes))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 5)
    except (OSError, asyncio.TimeoutError) as e:
        sock.close()
        rec["result"] = f"connect failed: {e!r}"
        return rec
    c = Conn(loop, sock)
    try:
        upgraded = False
        echoed = text is None
        close_sent = None
        text_sent = False
        for k, (what, writes) in enumerate(parts):
            for n, data in enumerate(writes):
                if n:
                    await asyncio.sleep(SPLIT_GAP_S)
                t = c.send(data)
            text_sent = text_sent or "text" in what
            if "close" in what:
                close_sent = t
                rec["t"] = t
            last = k == len(parts) - 1
            deadline = time.monotonic() + (CLOSE_WAIT_S if close_sent else 5.0) + (0 if upgraded else 3.0)
            # What this write waits for before the next one goes.
            while True:
                if not upgraded:
                    end = c.buf.find(b"\r\n\r\n")
                    if end >= 0:
                        head = bytes(c.buf[:end]).decode("latin-1")
                        del c.buf[:end + 4]
                        if not head.startswith("HTTP/1.1 101"):
                            rec["result"] = "refused: " + head.split("\r\n")[0]
                            return rec
                        upgraded = True
                        rec["t101"] = c.stamp
                        continue
                else:
                    f = parse_frame(c.buf)
                    if f:
                        op, payload, n = f
                        del c.buf[:n]
                        if op == 1 and not echoed:
                            if payload != text.encode():
                                rec["result"] = "wrong echo"
                                return rec
                            echoed = True
                            continue
                        if op == 8:
                            rec["code"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                            if close_sent is None:
                                # The server closed first (a stopping child: 1001).
                                rec["result"] = "server closed first"
                                return rec
                            # A close sent before the 101 came back waited
                            # for the handshake (and maybe for a worker):
                            # timed from the 101.
                            rec["latency"] = c.stamp - max(close_sent, rec["t101"])
                            if rec["code"] != 1000:
                                rec["result"] = f"close {rec['code']}"
                            break
                        rec["result"] = f"unexpected frame opcode {op}"
                        return rec
                if upgraded and (echoed or not text_sent) and not last:
                    break
                if not await c.wait(deadline):
                    if c.eof or c.error:
                        rec["result"] = "missing: EOF without a close frame" if close_sent else \
                            "EOF before the close (" + ("no 101" if not upgraded else "no echo") + ")"
                    else:
                        rec["result"] = "missing: no close frame in %.1f s" % CLOSE_WAIT_S if close_sent else \
                            "timeout before the close (" + ("no 101" if not upgraded else "no echo") + ")"
                    return rec
        # The server's FIN follows its close frame.
        deadline = time.monotonic() + FIN_WAIT_S
        while not c.eof and not c.error:
            if not await c.wait(deadline):
                break
        if not c.eof and not c.error:
            rec["result"] = "no FIN after the close frame"
        elif c.buf:
            rec["result"] = f"{len(c.buf)} bytes after the close frame"
        return rec
    finally:
        rec["unstamped"] = c.unstamped
        c.close()


async def run(port, count, concurrency, schedule=None, events=(), seed=1, deadline_s=120):
    """Runs `count` connections, at most `concurrency` at a time. schedule:
    a function of the elapsed seconds giving the concurrency to use then (for
    load that rises and falls, so the MPM starts and stops children). events:
    (at seconds, callable) run once in a thread at that time (e.g. a graceful
    restart). Returns the records and the elapsed time."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    records = []
    next_index = 0
    t0 = time.monotonic()
    stop_at = t0 + deadline_s

    async def worker(slot):
        nonlocal next_index
        while next_index < count and time.monotonic() < stop_at:
            now = time.monotonic() - t0
            if schedule and slot >= schedule(now):
                await asyncio.sleep(0.02)
                continue
            i = next_index
            next_index += 1
            records.append(await one(loop, port, i, MODES[i % len(MODES)], rng))

    async def fire(at, fn):
        await asyncio.sleep(at)
        await loop.run_in_executor(None, fn)

    side = [asyncio.ensure_future(fire(at, fn)) for at, fn in events]
    await asyncio.gather(*(worker(s) for s in range(concurrency)))
    for s in side:
        await s
    return records, time.monotonic() - t0


def stamp(t):
    return time.strftime("%H:%M:%S", time.gmtime(t)) + ".%06d" % int((t % 1) * 1e6)


def summary(records, elapsed):
    """Lines describing the run: counts, the latency distribution, by mode."""
    lat = sorted(r["latency"] for r in records if r["latency"] is not None)
    lines = [f"{len(records)} connections in {elapsed:.1f} s ({len(records) / max(elapsed, 1e-9):.0f}/s)"]
    results = {}
    for r in records:
        results[r["result"]] = results.get(r["result"], 0) + 1
    lines.append("results: " + ", ".join(f"{k}: {v}" for k, v in sorted(results.items(), key=lambda kv: -kv[1])))
    unstamped = sum(r.get("unstamped", 0) for r in records)
    if unstamped:
        lines.append(f"({unstamped} chunks came without a kernel timestamp: timed on arrival in Python)")
    if lat:
        def q(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
        lines.append("close reply latency (ms): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f" %
                     (q(.5), q(.9), q(.99), q(.999), lat[-1] * 1000))
        edges = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, CLOSE_WAIT_S)
        hist, lo = [], 0.0
        for hi in edges:
            hist.append(f"<{hi * 1000:g}ms: {sum(1 for x in lat if lo <= x < hi)}")
            lo = hi
        lines.append("  " + "  ".join(hist))
    for mode in MODES:
        ml = [r["latency"] for r in records if r["mode"] == mode and r["latency"] is not None]
        if ml:
            lines.append(f"  {mode:20s} n={len(ml):5d}  max {max(ml) * 1000:8.2f} ms")
    return lines


def main(argv):
    port = int(argv[1])
    count = int(argv[2]) if len(argv) > 2 else 5000
    conc = int(argv[3]) if len(argv) > 3 else 32
    records, elapsed = asyncio.run(run(port, count, conc, deadline_s=10 ** 6))
    for line in summary(records, elapsed):
        print(line)
    bad = [r for r in records if r["result"] != "ok" or r["latency"] > 0.1]
    for r in bad[:50]:
        print(f"  {stamp(r['t'])} #{r['i']} [{r['mode']}] {r['result']} latency={r['latency']}")
    return 1 if any(r["result"] != "ok" for r in records) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
