"""The closing handshake (RFC 6455 §5.5.1, §7) on the echo endpoint: which
close codes a client may send, what comes back, and what happens to data
that follows a close.

Close codes: the module (src/protocol/close_code.cpp, is_valid_close_code)
accepts 1000-1003, 1007-1011 and 3000-4999 from a peer and fails the
connection with 1002 for everything else, including 1012-1014: those were
registered with IANA after RFC 6455, and Autobahn's case 7.9.x still lists
them as invalid. These tests pin that decision; change them together with
close_code.cpp if it changes."""
import struct

from harness import shared_apache
from wsclient import (BINARY, CLOSE, PING, TEXT, WS, encode_frame, ws_next_close,
                      ws_rest_until_eof)

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals())


def connect():
    return WS(apache.port)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def closed_with(raw, what):
    """Sends raw bytes on a fresh connection; returns the server's close
    (code, reason) after checking nothing follows it and TCP is closed."""
    w = connect()
    try:
        w.send_raw(raw)
        got = ws_next_close(w)
        rest = ws_rest_until_eof(w, timeout=5)
        assert rest == b"", f"{what}: bytes after the server's close frame: {rest[:80]!r}"
        return got
    finally:
        w.shutdown()


def test_valid_codes_are_echoed():
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        got, _ = closed_with(encode_frame(CLOSE, close_payload(code)), f"close {code}")
        assert got == code, f"client closed with {code}, server answered {got}"


def test_valid_code_with_reason_is_echoed():
    got, _ = closed_with(encode_frame(CLOSE, close_payload(1000, b"bye now")), "1000 with reason")
    assert got == 1000, got
    got, _ = closed_with(encode_frame(CLOSE, close_payload(4001, "adiós €".encode())),
                         "4001 with utf-8 reason")
    assert got == 4001, got


def test_invalid_codes_get_1002():
    for code in (0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999,
                 5000, 65535):
        got, _ = closed_with(encode_frame(CLOSE, close_payload(code)), f"close {code}")
        assert got == 1002, f"client closed with invalid {code}, server answered {got} (want 1002)"


def test_one_byte_close_payload_1002():
    got, _ = closed_with(encode_frame(CLOSE, b"\x03"), "1-byte close")
    assert got == 1002, got


def test_empty_close_gets_empty_close_or_1000():
    w = connect()
    try:
        w.send(CLOSE, b"")
        fin, op, payload, rsv = w.recv_frame()
        assert (fin, op, rsv) == (True, CLOSE, 0), (fin, op, rsv)
        assert payload in (b"", struct.pack("!H", 1000)), \
            f"answer to an empty close must be empty or 1000, got {payload!r}"
        rest = ws_rest_until_eof(w, timeout=5)
        assert rest == b"", rest
    finally:
        w.shutdown()


def test_close_reason_with_invalid_utf8_1007():
    for reason in (b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf"):
        got, _ = closed_with(encode_frame(CLOSE, close_payload(1000, reason)), f"reason {reason!r}")
        assert got == 1007, f"reason {reason!r}: got {got}, want 1007"


def test_close_with_123_byte_reason():
    reason = ("é" * 61 + "x").encode()  # 123 bytes, multi-byte UTF-8
    assert len(reason) == 123
    got, _ = closed_with(encode_frame(CLOSE, close_payload(1000, reason)), "123-byte reason")
    assert got == 1000, got


def test_close_with_124_byte_reason_is_oversized_control_frame_1002():
    got, _ = closed_with(encode_frame(CLOSE, close_payload(1000, b"r" * 124)), "126-byte close")
    assert got == 1002, got


def test_data_after_client_close_is_ignored():
    # The close and more frames arrive in one segment: nothing but the close
    # answer may come back.
    raw = (encode_frame(CLOSE, close_payload(1000)) + encode_frame(TEXT, b"ignored")
           + encode_frame(PING, b"ignored") + encode_frame(BINARY, b"\x00" * 10))
    got, _ = closed_with(raw, "frames after close")
    assert got == 1000, got


def test_data_before_close_is_echoed_then_close():
    w = connect()
    try:
        w.send_raw(encode_frame(TEXT, b"first") + encode_frame(CLOSE, close_payload(1001)))
        assert w.recv_message() == (TEXT, b"first")
        assert ws_next_close(w) == (1001, "")
        assert ws_rest_until_eof(w, timeout=5) == b""
    finally:
        w.shutdown()


def test_close_inside_fragmented_message():
    # Control frames may come between fragments; a close ends the connection
    # and the unfinished message is dropped.
    raw = encode_frame(TEXT, b"part", fin=False) + encode_frame(CLOSE, close_payload(1000))
    got, _ = closed_with(raw, "close between fragments")
    assert got == 1000, got


def test_close_frame_must_not_be_fragmented():
    got, _ = closed_with(encode_frame(CLOSE, close_payload(1000), fin=False), "close with FIN=0")
    assert got == 1002, got
