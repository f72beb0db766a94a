"""Data framing (RFC 6455 §5) on the echo endpoint through a real Apache:
payload sizes and length encodings, odd TCP splits, fragmentation with
interleaved control frames, and every protocol violation's close code."""
import os
import socket
import struct
import time

from harness import CRASH_MARKERS, no_child_crash, shared_apache
from run import time_limit
from wsclient import (BINARY, CONT, PING, PONG, TEXT, WS, accept_for, encode_frame,
                      handshake_request, mask_bytes, ws_next_close, ws_rest_until_eof)

EXTRA = """
<Location /ws/small>
  SetHandler wsbridge
  WSBridgeApp echo
  WSBridgeMaxMessageSize 1K
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA)


def connect(path="/ws/echo"):
    return WS(apache.port, path=path)


def echo(w, opcode, payload, timeout=10.0):
    w.send(opcode, payload)
    got_op, got = w.recv_message(timeout=timeout)
    assert got_op == opcode, f"opcode: got {got_op:#x}, expected {opcode:#x}"
    assert got == payload, (f"echo differs: sent {len(payload)} bytes, got {len(got)}; "
                            f"first difference at {first_diff(got, payload)}")


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def expect_failure(w, code, what, timeout=5.0):
    """The server must answer with exactly one close frame carrying `code`,
    send nothing after it, and close the TCP connection."""
    try:
        got, reason = ws_next_close(w, timeout=timeout)
        assert got == code, f"{what}: expected close {code}, got {got} ({reason!r})"
        rest = ws_rest_until_eof(w, timeout=5)
        assert rest == b"", f"{what}: bytes after the close frame: {rest[:80]!r}"
    finally:
        w.shutdown()


def violation(raw, code=1002, what="", path="/ws/echo"):
    w = connect(path)
    w.send_raw(raw)
    expect_failure(w, code, what or repr(raw[:20]))


# --- sizes and length encodings -------------------------------------------

def test_echo_sizes_text_and_binary():
    w = connect()
    try:
        for n in (0, 1, 125, 126, 127, 65535, 65536, 1 << 20):
            echo(w, BINARY, os.urandom(n))
            echo(w, TEXT, (b"abcdefghij" * (n // 10 + 1))[:n])
    finally:
        w.shutdown()


def test_multibyte_text_echo():
    w = connect()
    try:
        for s in ("€", "héllo wörld", "日本語テキスト", "😀" * 40, "a\u0000b"):
            echo(w, TEXT, s.encode("utf-8"))
    finally:
        w.shutdown()


def test_64bit_length_messages_byte_exact():
    w = connect()
    try:
        echo(w, BINARY, os.urandom(70000))
        echo(w, BINARY, os.urandom(8 << 20), timeout=30)
    finally:
        w.shutdown()


def test_message_at_exactly_the_limit_passes():
    w = connect("/ws/small")
    try:
        echo(w, BINARY, os.urandom(1024))
        echo(w, TEXT, b"t" * 1024)
    finally:
        w.shutdown()


@time_limit(20)
def test_one_byte_at_a_time_writer():
    raw, key = handshake_request()
    payload = bytes(range(32, 127)) * 3 + b"xxx"  # 288 + 3 = 291 bytes... made 300 below
    payload = (payload * 2)[:300]
    frame = encode_frame(TEXT, payload)
    sock = socket.create_connection(("127.0.0.1", apache.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for b in raw:
            sock.send(bytes([b]))
            time.sleep(0.001)
        buf = b""
        deadline = time.time() + 5
        while b"\r\n\r\n" not in buf and time.time() < deadline:
            buf += sock.recv(4096)
        head, _, rest = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert accept_for(key).encode() in head, head
        assert rest == b"", f"frames before any were sent: {rest!r}"
        for b in frame:
            sock.send(bytes([b]))
            time.sleep(0.001)
        expected = b"\x81\x7e" + struct.pack("!H", 300) + payload
        got = b""
        deadline = time.time() + 5
        while len(got) < len(expected) and time.time() < deadline:
            sock.settimeout(max(0.01, deadline - time.time()))
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
        assert got == expected, f"echo of byte-wise message: got {len(got)} bytes {got[:20]!r}"
    finally:
        sock.close()


def test_many_frames_in_one_segment():
    w = connect()
    try:
        msgs = [f"m{i}".encode() * (i % 7 + 1) for i in range(200)]
        w.send_raw(b"".join(encode_frame(TEXT, m) for m in msgs))
        for m in msgs:
            assert w.recv_message() == (TEXT, m)
    finally:
        w.shutdown()


# --- fragmentation ----------------------------------------------------------

def test_fragmented_text_with_interleaved_pings():
    w = connect()
    try:
        w.send(TEXT, "Hello, ", fin=False)
        w.send(PING, b"p1")
        w.send(CONT, "fragmented ", fin=False)
        w.send(PING, b"p2")
        w.send(CONT, "wörld", fin=False)
        w.send(PING, b"")
        w.send(CONT, "!", fin=True)
        frames = [w.recv_frame() for _ in range(4)]
        assert [(f[1], f[2]) for f in frames[:3]] == [(PONG, b"p1"), (PONG, b"p2"), (PONG, b"")], \
            f"pongs before the echo, in order: got {[(f[1], f[2]) for f in frames]}"
        fin, op, payload, rsv = frames[3]
        assert (fin, op, rsv) == (True, TEXT, 0), frames[3]
        assert payload == "Hello, fragmented wörld!".encode()
    finally:
        w.shutdown()


def test_fragmented_binary_and_empty_fragments():
    w = connect()
    try:
        parts = [os.urandom(1000), b"", os.urandom(70000), b"", os.urandom(3)]
        w.send(BINARY, parts[0], fin=False)
        for p in parts[1:-1]:
            w.send(CONT, p, fin=False)
        w.send(CONT, parts[-1], fin=True)
        assert w.recv_message() == (BINARY, b"".join(parts))
        # and an empty message in three empty fragments
        w.send(TEXT, b"", fin=False)
        w.send(CONT, b"", fin=False)
        w.send(CONT, b"", fin=True)
        assert w.recv_message() == (TEXT, b"")
    finally:
        w.shutdown()


def test_utf8_sequence_split_across_fragments_is_valid():
    w = connect()
    try:
        euro = "€".encode()  # e2 82 ac
        w.send(TEXT, b"a" + euro[:1], fin=False)
        w.send(CONT, euro[1:2], fin=False)
        w.send(CONT, euro[2:] + b"b", fin=True)
        assert w.recv_message() == (TEXT, b"a" + euro + b"b")
    finally:
        w.shutdown()


# --- protocol errors: 1002 ----------------------------------------------------

def test_unmasked_client_frame_1002():
    violation(encode_frame(TEXT, b"hello", mask=False), what="unmasked text")
    violation(encode_frame(PING, b"", mask=False), what="unmasked ping")


def test_rsv_bits_1002():
    for rsv in (1, 2, 4, 7):
        violation(encode_frame(TEXT, b"x", rsv=rsv), what=f"rsv={rsv}")
    violation(encode_frame(PING, b"x", rsv=4), what="rsv on ping")


def test_reserved_opcodes_1002():
    for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
        violation(encode_frame(op, b"x"), what=f"opcode {op}")


def test_control_frame_with_126_byte_payload_1002():
    violation(encode_frame(PING, b"p" * 126), what="126-byte ping")
    violation(encode_frame(PONG, b"p" * 126), what="126-byte pong")


def test_fragmented_ping_1002():
    violation(encode_frame(PING, b"x", fin=False), what="ping with FIN=0")


def test_continuation_without_start_1002():
    violation(encode_frame(CONT, b"x", fin=True), what="lone continuation")
    violation(encode_frame(CONT, b"x", fin=False), what="lone continuation fin=0")


def test_new_data_frame_inside_fragmented_message_1002():
    violation(encode_frame(TEXT, b"a", fin=False) + encode_frame(TEXT, b"b"), what="text in text")
    violation(encode_frame(BINARY, b"a", fin=False) + encode_frame(TEXT, b"b", fin=False),
              what="text in binary")


def test_continuation_after_complete_message_1002():
    w = connect()
    w.send(TEXT, b"done")
    assert w.recv_message() == (TEXT, b"done")
    w.send(CONT, b"more")
    expect_failure(w, 1002, "continuation after a FIN frame")


def test_64bit_length_with_msb_set_1002():
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63 | 5)
    violation(head + os.urandom(4) + b"xxxxx", what="length 2^63+5")
    head = bytes([0x82, 0x80 | 127]) + b"\xff" * 8
    violation(head + os.urandom(4), what="length 2^64-1")


# --- invalid UTF-8: 1007 ------------------------------------------------------

BAD_UTF8 = {
    "first byte": b"\xffabc",
    "lone continuation": b"\x80abc",
    "middle": b"abc\xc3\x28def",
    "last byte truncated": b"hello\xc3",
    "truncated 4-byte at end": b"hi\xf0\x9f\x98",
    "overlong 2-byte": b"a\xc0\xafb",
    "overlong 3-byte": b"a\xe0\x80\xafb",
    "overlong 4-byte": b"\xf0\x80\x80\xaf",
    "surrogate": b"a\xed\xa0\x80b",
    "low surrogate": b"\xed\xbf\xbf",
    "above U+10FFFF": b"\xf4\x90\x80\x80",
    "f5 byte": b"\xf5\x80\x80\x80",
}


def test_invalid_utf8_1007():
    for name, payload in BAD_UTF8.items():
        violation(encode_frame(TEXT, payload), code=1007, what=name)


def test_invalid_utf8_split_across_fragments_1007():
    violation(encode_frame(TEXT, b"ab\xe2\x82", fin=False) + encode_frame(CONT, b"\x28", fin=True),
              code=1007, what="broken sequence across fragments")
    violation(encode_frame(TEXT, b"ab", fin=False) + encode_frame(CONT, b"cd\xe2", fin=True),
              code=1007, what="message ends inside a sequence in the last fragment")
    violation(encode_frame(TEXT, b"ok", fin=False) + encode_frame(CONT, b"\xed\xa0", fin=False)
              + encode_frame(CONT, b"\x80", fin=True), code=1007, what="surrogate split 2+1")


def test_binary_is_not_utf8_checked():
    w = connect()
    try:
        echo(w, BINARY, b"\xff\xfe\xc0\xaf\xed\xa0\x80")
    finally:
        w.shutdown()


def test_invalid_utf8_fails_fast():
    # The header announces 100 payload bytes; only the first 10 are sent and
    # they already hold an invalid sequence. The close must come without the
    # other 90 bytes.
    w = connect()
    key = os.urandom(4)
    payload = b"abcd\xc3\x28" + b"e" * 94
    head = bytes([0x81, 0x80 | 100]) + key
    w.send_raw(head + mask_bytes(payload, key)[:10])
    expect_failure(w, 1007, "fail fast on invalid utf-8", timeout=3)


def test_invalid_utf8_in_first_fragment_fails_before_message_end():
    w = connect()
    w.send(TEXT, b"ab\xff", fin=False)
    expect_failure(w, 1007, "fail fast in a FIN=0 fragment", timeout=3)


# --- size limits: 1009 --------------------------------------------------------

def test_message_over_limit_1009():
    violation(encode_frame(BINARY, os.urandom(1025)), code=1009, what="1025 > 1K", path="/ws/small")
    violation(encode_frame(TEXT, b"t" * 4000), code=1009, what="4000 > 1K text", path="/ws/small")


def test_fragments_adding_up_past_limit_1009():
    w = connect("/ws/small")
    w.send(BINARY, b"a" * 600, fin=False)
    w.send(CONT, b"b" * 424, fin=False)   # 1024: still fine
    w.send(CONT, b"c" * 1, fin=True)      # 1025: over
    expect_failure(w, 1009, "fragments summing to 1025 > 1K")


def test_oversize_announced_in_header_fails_without_payload():
    # Refused from the length in the header alone: no payload is sent.
    w = connect("/ws/small")
    w.send_raw(bytes([0x82, 0x80 | 126]) + struct.pack("!H", 2000) + os.urandom(4))
    expect_failure(w, 1009, "2000-byte frame header on a 1K endpoint", timeout=3)
    w = connect()  # 16M endpoint: a 1 GiB frame header
    w.send_raw(bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 30) + os.urandom(4))
    expect_failure(w, 1009, "1 GiB frame header on the 16M endpoint", timeout=3)


# --- control frames -----------------------------------------------------------

def test_ping_gets_pong_with_same_payload():
    w = connect()
    try:
        for payload in (b"", b"x", b"hello ping", os.urandom(125), b"p" * 125):
            w.send(PING, payload)
            fin, op, got, rsv = w.recv_frame()
            assert (fin, op, rsv) == (True, PONG, 0), (fin, op, rsv)
            assert got == payload, f"pong payload {got!r} != ping payload {payload!r}"
    finally:
        w.shutdown()


def test_unsolicited_pong_is_ignored():
    w = connect()
    try:
        w.send(PONG, b"unsolicited")
        w.send(PONG, b"")
        echo(w, TEXT, b"still here")
        w.sock.settimeout(0.3)
        assert w.buf == b"", f"unexpected bytes: {w.buf!r}"
        try:
            extra = w.sock.recv(100)
        except (socket.timeout, TimeoutError):
            extra = b""
        assert extra == b"", f"server answered a pong with {extra!r}"
    finally:
        w.shutdown()


def test_nothing_after_servers_close_and_tcp_closed():
    # After failing the connection the server sends nothing more, even when
    # the client keeps sending pings and data.
    w = connect()
    w.send_raw(encode_frame(TEXT, b"\xff") + encode_frame(PING, b"after") + encode_frame(TEXT, b"x"))
    try:
        code, _ = ws_next_close(w)
        assert code == 1007, code
        try:
            w.send(PING, b"more")
        except OSError:
            pass
        rest = ws_rest_until_eof(w, timeout=5)
        assert rest == b"", f"server sent {rest!r} after its close frame"
    finally:
        w.shutdown()


def test_server_frames_use_minimal_length_encoding():
    w = connect()
    try:
        for n, second, header_len in ((0, 0, 2), (125, 125, 2), (126, 126, 4), (65535, 126, 4),
                                      (65536, 127, 10)):
            w.send(BINARY, b"b" * n)
            w._fill(header_len, time.time() + 5)
            b0, b1 = w.buf[0], w.buf[1]
            assert b0 == 0x82, f"{n} bytes: first byte {b0:#x}, want 0x82 (FIN, no RSV, binary)"
            assert b1 == second, f"{n} bytes: length byte {b1}, want {second} (minimal encoding)"
            if header_len == 4:
                assert struct.unpack("!H", w.buf[2:4])[0] == n
            if header_len == 10:
                assert struct.unpack("!Q", w.buf[2:10])[0] == n
            assert w.recv_message() == (BINARY, b"b" * n)
    finally:
        w.shutdown()


def test_close_not_lost_when_client_keeps_sending():
    # The client goes on writing after its protocol error; the server's close
    # frame must still arrive (not be destroyed by a TCP reset because unread
    # data was pending when the server closed).
    w = connect()
    try:
        junk = encode_frame(BINARY, os.urandom(60000))
        w.send_raw(encode_frame(TEXT, b"\xff"))
        time.sleep(0.05)
        try:
            for _ in range(4):
                w.send_raw(junk)
        except OSError:
            pass  # the server may already have closed; its close frame must be readable
        code, _ = ws_next_close(w)
        assert code == 1007, code
    finally:
        w.shutdown()


def test_error_log_shows_no_crash():
    no_child_crash(apache, CRASH_MARKERS + ("terminate called",))
