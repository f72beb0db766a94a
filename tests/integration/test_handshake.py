"""The opening handshake of the WebSocket endpoint (RFC 6455 §4.2) through a
real Apache: what is accepted, what is refused with which status, headers
and log line, and that an upgraded request is logged once as 101."""
import base64
import os
import re
import time
import uuid

from harness import CRASH_MARKERS, no_child_crash, shared_apache
from wsclient import (TEXT, WS, accept_for, handshake_request, read_http_response,
                      recv_at_least, ws_next_close, ws_rest_until_eof, encode_frame)

EXTRA = """
<Location /ws/o>
  SetHandler wsbridge
  WSBridgeAllowOrigin https://a.example http://b.example:8080
</Location>
<Location /ws/anyorigin>
  SetHandler wsbridge
  WSBridgeAllowOrigin *
</Location>
<Location /ws/sub>
  SetHandler wsbridge
  WSBridgeSubprotocols chat.v2 chat.v1
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA)


def request(**kw):
    """Sends a handshake built by handshake_request(**kw); returns
    (status, headers, body) with the whole body read, socket closed."""
    raw, _ = handshake_request(**kw)
    status, headers, body, sock = read_http_response(apache.port, raw)
    sock.close()
    return status, headers, body


def upgrade(**kw):
    """A handshake that must succeed; returns (headers, WS-like sock, key)."""
    raw, key = handshake_request(**kw)
    status, headers, body, sock = read_http_response(apache.port, raw)
    assert status == 101, f"expected 101, got {status} {headers} {body!r}"
    assert headers.get("sec-websocket-accept") == accept_for(key), \
        f"accept {headers.get('sec-websocket-accept')!r} != {accept_for(key)!r}"
    sock.close()
    return headers


def host():
    return f"127.0.0.1:{apache.port}"


def assert_status(got, expected, headers, body):
    assert got == expected, f"expected {expected}, got {got}; headers={headers} body={body!r}"


# --- accepted handshakes ----------------------------------------------------

def test_rfc_sample_key_gets_rfc_accept():
    # The sample from RFC 6455 §1.3.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    raw, _ = handshake_request(key=key)
    status, headers, rest, sock = read_http_response(apache.port, raw)
    sock.close()
    assert status == 101, (status, headers, rest)
    assert headers.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", headers
    assert headers.get("upgrade", "").lower() == "websocket", headers
    assert "upgrade" in [t.strip().lower() for t in headers.get("connection", "").split(",")], headers
    # A 101 has no body (RFC 9110 §15.2): no length, no chunking.
    assert "transfer-encoding" not in headers, headers
    assert headers.get("content-length", "0") == "0", headers
    assert "sec-websocket-protocol" not in headers, headers


def test_101_then_frames_work():
    w = WS(apache.port)
    try:
        w.send(TEXT, "after handshake")
        assert w.recv_message() == (TEXT, b"after handshake")
    finally:
        w.shutdown()


def test_frame_pipelined_with_handshake_is_not_lost():
    # A client may send its first frame right behind the request, in the same
    # TCP segment; those bytes are already in Apache's input brigade.
    raw, key = handshake_request(host=host())
    frame = encode_frame(TEXT, b"pipelined")
    status, headers, rest, sock = read_http_response(apache.port, raw + frame)
    try:
        assert status == 101, (status, headers)
        assert headers["sec-websocket-accept"] == accept_for(key)
        buf = recv_at_least(sock, 11, rest, timeout=5)
        assert buf == b"\x81\x09pipelined", f"echo of pipelined frame: got {buf!r}"
    finally:
        sock.close()


def test_upgrade_and_connection_are_case_insensitive_token_lists():
    cases = [
        ("WebSocket", "keep-alive, Upgrade"),
        ("websocket", "Upgrade, keep-alive"),
        ("WEBSOCKET", "UPGRADE"),
        ("websocket", "keep-alive,upgrade"),
        ("websocket", "  keep-alive ,\tUpgrade  "),
        ("foo/1, websocket", "Upgrade"),
    ]
    for up, conn in cases:
        upgrade(upgrade=up, connection=conn)


def test_extensions_are_not_accepted_blindly():
    h = upgrade(extra={"Sec-WebSocket-Extensions": "x-unknown-ext; foo=1"})
    assert "sec-websocket-extensions" not in h, f"accepted an unknown extension: {h}"
    h = upgrade(extra={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
    ext = h.get("sec-websocket-extensions")
    assert ext is None or ext.split(";")[0].strip() == "permessage-deflate", h


def test_same_host_origin_allowed():
    upgrade(host=host(), extra={"Origin": f"http://{host()}"})
    upgrade(host=host(), extra={"Origin": f"http://{host().upper()}"})


# --- refusals ---------------------------------------------------------------

def test_post_and_put_get_405_with_allow_get():
    for method in ("POST", "PUT", "DELETE"):
        raw, _ = handshake_request(method=method, extra={"Content-Length": "0"})
        status, headers, body, sock = read_http_response(apache.port, raw)
        sock.close()
        assert_status(status, 405, headers, body)
        assert headers.get("allow") == "GET", f"{method}: Allow={headers.get('allow')!r}"


def test_http10_gets_400():
    status, headers, body = request(proto="HTTP/1.0")
    assert_status(status, 400, headers, body)


def test_plain_get_gets_426_with_headers_and_short_text():
    raw = (f"GET /ws/echo HTTP/1.1\r\nHost: {host()}\r\n\r\n").encode()
    status, headers, body, sock = read_http_response(apache.port, raw)
    sock.close()
    assert_status(status, 426, headers, body)
    assert headers.get("upgrade", "").lower() == "websocket", headers
    assert headers.get("sec-websocket-version") == "13", headers
    assert headers.get("content-type", "").startswith("text/plain"), headers
    text = body.decode("utf-8")
    assert 0 < len(text.strip()) <= 200, f"body should be one short line: {body!r}"
    assert "<html" not in text.lower(), f"body is Apache's HTML error page: {body!r}"
    assert "websocket" in text.lower(), body


def test_upgrade_without_websocket_token_gets_400():
    status, headers, body = request(upgrade="h2c")
    assert_status(status, 400, headers, body)


def test_connection_without_upgrade_token_gets_400():
    status, headers, body = request(connection="keep-alive")
    assert_status(status, 400, headers, body)


def test_bad_or_missing_key_gets_400():
    keys = {
        "15 bytes": base64.b64encode(os.urandom(15)).decode(),
        "17 bytes": base64.b64encode(os.urandom(17)).decode(),  # 24 chars, like a good key
        "not base64": "!!!!!!!!!!!!!!!!!!!!!A==",
        "padding inside": "AAAA=AAAAAAAAAAAAAAAAA==",
        "22 chars unpadded": base64.b64encode(os.urandom(16)).decode().rstrip("="),
    }
    assert len(keys["17 bytes"]) == 24
    for name, key in keys.items():
        status, headers, body = request(key=key)
        assert_status(status, 400, headers, f"{name}: {key!r} {body!r}")
    status, headers, body = request(key="")  # no Sec-WebSocket-Key header
    assert_status(status, 400, headers, body)
    status, headers, body = request(key="", extra={"Sec-WebSocket-Key": ""})
    assert_status(status, 400, headers, body)


def test_wrong_or_missing_version_gets_426_with_version_13():
    for version in ("8", None, "14", ""):
        status, headers, body = request(version=version)
        assert_status(status, 426, headers, f"version {version!r}: {body!r}")
        assert headers.get("sec-websocket-version") == "13", (version, headers)


def test_every_426_carries_upgrade_header():
    # RFC 9110 §15.5.22: "The server MUST send an Upgrade header field in a
    # 426 response to indicate the required protocol(s)"; and with Upgrade,
    # Connection: upgrade (§7.8).
    for name, kw in (("plain GET", dict(upgrade=None, connection=None, key="", version=None)),
                     ("version 8", dict(version="8")),
                     ("no version", dict(version=None))):
        status, headers, body = request(**kw)
        assert_status(status, 426, headers, body)
        assert headers.get("upgrade", "").lower() == "websocket", \
            f"{name}: 426 without 'Upgrade: websocket': {headers}"
        assert "upgrade" in headers.get("connection", "").lower(), \
            f"{name}: 426 with Upgrade but no 'Connection: upgrade': {headers}"


def test_refused_upgrade_keeps_connection_usable():
    # After a 426 or 403 (not 400, where Apache closes) the client may retry
    # on the same keep-alive connection.
    for kw in (dict(version="8"), dict(host=host(), extra={"Origin": "http://evil.example"})):
        raw, _ = handshake_request(**kw)
        status, headers, body, sock = read_http_response(apache.port, raw)
        try:
            assert status in (403, 426), (status, headers, body)
            raw, key = handshake_request()
            sock.sendall(raw)
            buf = b""
            deadline = time.time() + 5
            while b"\r\n\r\n" not in buf and time.time() < deadline:
                sock.settimeout(max(0.01, deadline - time.time()))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                buf += chunk
            assert buf.startswith(b"HTTP/1.1 101"), f"retry after {status}: {buf[:200]!r}"
            assert accept_for(key).encode() in buf, buf
        finally:
            sock.close()


def test_missing_host_is_refused():
    status, headers, body = request(host=None)
    assert_status(status, 400, headers, body)  # Apache itself requires Host in HTTP/1.1


def test_foreign_origin_gets_403():
    for origin in ("http://evil.example", f"http://127.0.0.1:{apache.port + 1}",
                   f"https://{host()}.evil.example", "null", "not an origin"):
        status, headers, body = request(host=host(), extra={"Origin": origin})
        assert_status(status, 403, headers, f"origin {origin!r}: {body!r}")


def test_listed_origins_pass_others_403():
    for origin in ("https://a.example", "http://b.example:8080", "HTTPS://A.EXAMPLE",
                   "https://a.example:443"):
        upgrade(path="/ws/o", host=host(), extra={"Origin": origin})
    for origin in ("http://a.example", "https://b.example:8080", "http://b.example",
                   f"http://{host()}", "https://c.example", "https://a.example.evil"):
        status, headers, body = request(path="/ws/o", host=host(), extra={"Origin": origin})
        assert_status(status, 403, headers, f"origin {origin!r}: {body!r}")
    # No Origin at all (a non-browser client) is not an origin check.
    upgrade(path="/ws/o", host=host())


def test_star_allows_every_origin():
    for origin in ("https://anything.example", "http://x.y:1", "null"):
        upgrade(path="/ws/anyorigin", host=host(), extra={"Origin": origin})


def test_subprotocol_server_preference_wins():
    h = upgrade(path="/ws/sub", extra={"Sec-WebSocket-Protocol": "chat.v1, chat.v2"})
    assert h.get("sec-websocket-protocol") == "chat.v2", h
    h = upgrade(path="/ws/sub", extra={"Sec-WebSocket-Protocol": "other, chat.v1"})
    assert h.get("sec-websocket-protocol") == "chat.v1", h


def test_no_common_subprotocol_means_no_header():
    h = upgrade(path="/ws/sub")
    assert "sec-websocket-protocol" not in h, h
    h = upgrade(path="/ws/sub", extra={"Sec-WebSocket-Protocol": "other, CHAT.V2"})
    assert "sec-websocket-protocol" not in h, f"tokens are case-sensitive: {h}"
    h = upgrade(path="/ws/echo", extra={"Sec-WebSocket-Protocol": "chat.v1"})
    assert "sec-websocket-protocol" not in h, h


def test_each_refusal_is_logged_with_its_status():
    tag = uuid.uuid4().hex[:8]
    cases = [
        (405, dict(method="POST", extra={"Content-Length": "0"})),
        (400, dict(proto="HTTP/1.0")),
        (426, dict(upgrade=None, connection=None, version=None, key="")),
        (400, dict(key="short")),
        (426, dict(version="8")),
        (403, dict(host=host(), extra={"Origin": "http://evil.example"})),
    ]
    for i, (code, kw) in enumerate(cases):
        path = f"/ws/echo/refuse-{tag}-{i}"
        status, headers, body = request(path=path, **kw)
        assert_status(status, code, headers, body)
    for i, (code, _) in enumerate(cases):
        path = f"/ws/echo/refuse-{tag}-{i}"
        pattern = re.compile(r"wsbridge:.*" + re.escape(path) + r"\D.*\b" + str(code) + r"\b")
        deadline = time.time() + 5
        while time.time() < deadline and not pattern.search(apache.error_log()):
            time.sleep(0.05)
        lines = [line for line in apache.error_log().splitlines() if path in line]
        assert pattern.search(apache.error_log()), \
            f"no error-log line naming {path} and status {code}; lines for it: {lines}"


def test_upgraded_connection_logged_once_as_101_and_nothing_after_close():
    tag = uuid.uuid4().hex
    path = f"/ws/echo?once={tag}"
    w = WS(apache.port, path=path)
    try:
        w.send(TEXT, b"x")
        assert w.recv_message() == (TEXT, b"x")
        w.close(1000)
        assert ws_next_close(w) == (1000, "")
        rest = ws_rest_until_eof(w, timeout=5)
        assert rest == b"", f"bytes after the close frame: {rest[:200]!r}"
    finally:
        w.shutdown()
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline:
        lines = [line for line in apache.access_log().splitlines() if tag in line]
        if lines:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # a second (wrong) line would follow the first at once
    lines = [line for line in apache.access_log().splitlines() if tag in line]
    assert len(lines) == 1, f"expected one access-log line for {path}, got {lines}"
    assert re.search(r'" 101 ', lines[0]), f"access-log line is not a 101: {lines[0]}"


def test_error_log_shows_no_crash():
    no_child_crash(apache, CRASH_MARKERS + ("terminate called",))
