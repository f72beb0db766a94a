"""wss:// on the wire: a write batch goes out in as few TLS records as the
16 KiB record limit allows (issue 17). mod_ssl makes at least one record of
every bucket it is passed, so a batch handed down frame by frame would cost
a record (22 bytes, an encryption, a trip to the core filter) per frame.

The client talks to Apache through a small TCP relay that reads the raw TLS
record headers going from the server to the client and counts them; a TLS
1.3 record's payload is at most 16,384 bytes of plaintext + 1 content type
byte + 16 tag bytes (+ up to 255 padding bytes, which OpenSSL does not add).

The batches are made deterministic by the echo endpoint: everything the
client sends in one TLS record is one read for the session, and the echoes
of one read are one write batch. permessage-deflate makes small input turn
into large output (the server's own messages are not compressed)."""
import math
import socket
import threading
import time
import zlib

from harness import free_port, shared_apache
from wsclient import TEXT, WS, encode_frame

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), ssl=True)

RECORD = 16384
APPLICATION_DATA = 23


class RecordRelay:
    """Relays one TCP connection to Apache's TLS port and counts the TLS
    records the server sends (and the plaintext bytes they can carry)."""

    def __init__(self, target_port):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        self.lock = threading.Lock()
        self.records = []  # (content type, record length) server -> client
        self.pending = b""
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        self.listener.settimeout(10)
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        for src, dst, count in ((client, server, False), (server, client, True)):
            t = threading.Thread(target=self._pump, args=(src, dst, count), daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, src, dst, count):
        src.settimeout(30)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    self._parse(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _parse(self, data):
        with self.lock:
            buf = self.pending + data
            while len(buf) >= 5:
                length = int.from_bytes(buf[3:5], "big")
                if len(buf) < 5 + length:
                    break
                self.records.append((buf[0], length))
                buf = buf[5 + length:]
            self.pending = buf

    def count(self):
        with self.lock:
            return len(self.records)

    def since(self, start):
        with self.lock:
            return list(self.records[start:])

    def close(self):
        self.listener.close()


def connect_through_relay():
    relay = RecordRelay(apache.ssl_port)
    ws = WS(relay.port, ssl=True, extra={"Sec-WebSocket-Extensions": "permessage-deflate"})
    return relay, ws


def frame_size(payload_len):
    """Bytes of an unmasked server frame carrying payload_len bytes."""
    return payload_len + (2 if payload_len < 126 else 4 if payload_len < 65536 else 10)


def deflated(data):
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def records_for(relay, start, expect_bytes, timeout=10):
    """The server's records after start until they carry expect_bytes of
    WebSocket frames (each record: plaintext + content type + 16 tag bytes)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        recs = relay.since(start)
        if sum(length - 17 for _, length in recs) >= expect_bytes:
            return recs
        time.sleep(0.02)
    return relay.since(start)


def send_in_one_record(ws, frames):
    data = b"".join(frames)
    assert len(data) <= RECORD, "must fit one client record to be one server read"
    ws.send_raw(data)


def test_small_frames_of_one_batch_share_one_record():
    relay, ws = connect_through_relay()
    try:
        assert ws.headers.get("sec-websocket-extensions", "").startswith("permessage-deflate")
        time.sleep(0.2)  # session tickets and anything else after the handshake
        start = relay.count()
        msgs = [f"small frame {i:03d}".encode() for i in range(200)]
        send_in_one_record(ws, [encode_frame(TEXT, m) for m in msgs])
        for i, m in enumerate(msgs):
            assert ws.recv_message(timeout=5) == (TEXT, m), f"echo {i}"
        total = sum(frame_size(len(m)) for m in msgs)
        recs = records_for(relay, start, total)
        assert all(t == APPLICATION_DATA for t, _ in recs), recs
        # 200 frames, 3,400 bytes: one record (it was 200, one per frame)
        assert len(recs) == math.ceil(total / RECORD), \
            f"{len(msgs)} frames ({total} bytes) came in {len(recs)} TLS records: {recs[:10]}"
    finally:
        ws.shutdown()
        relay.close()


def test_large_batch_fills_whole_records():
    # Small and large frames mixed, 5 x 30,000 + 6 small: 150 KB out of one
    # client record of compressed input. Full 16 KiB records, one short one
    # at the end: a frame's bytes share a record with its neighbours'.
    relay, ws = connect_through_relay()
    try:
        time.sleep(0.2)
        start = relay.count()
        frames, expect = [], []
        for i in range(5):
            small = f"tick {i}".encode()
            big = bytes([ord("a") + i]) * 30000
            frames.append(encode_frame(TEXT, small))
            frames.append(encode_frame(TEXT, deflated(big), rsv=4))
            expect += [small, big]
        frames.append(encode_frame(TEXT, b"end"))
        expect.append(b"end")
        send_in_one_record(ws, frames)
        for i, m in enumerate(expect):
            got = ws.recv_message(timeout=10)
            assert got == (TEXT, m), f"echo {i}: {len(got[1])} bytes"
        total = sum(frame_size(len(m)) for m in expect)
        recs = records_for(relay, start, total)
        plain = [length - 17 for _, length in recs]
        assert sum(plain) == total, (sum(plain), total)
        assert len(recs) == math.ceil(total / RECORD), \
            f"{len(expect)} frames ({total} bytes) came in {len(recs)} records: {plain}"
        assert all(p == RECORD for p in plain[:-1]), plain
    finally:
        ws.shutdown()
        relay.close()


def test_single_large_frame_is_not_copied_into_extra_records():
    # One 100,000-byte message alone in its batch: ceil(bytes / 16 KiB).
    relay, ws = connect_through_relay()
    try:
        time.sleep(0.2)
        start = relay.count()
        big = b"z" * 100000
        send_in_one_record(ws, [encode_frame(TEXT, deflated(big), rsv=4)])
        assert ws.recv_message(timeout=10) == (TEXT, big)
        total = frame_size(len(big))
        recs = records_for(relay, start, total)
        assert len(recs) == math.ceil(total / RECORD), [length for _, length in recs]
    finally:
        ws.shutdown()
        relay.close()
