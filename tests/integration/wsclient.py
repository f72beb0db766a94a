"""A raw RFC 6455 client for the tests: every byte on the wire is under the
test's control (bad frames, odd splits), unlike a client library."""
import base64
import hashlib
import os
import socket
import ssl as ssl_mod
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class Closed(Exception):
    """The server closed the TCP connection."""


def http_request(port, raw, ssl=False, timeout=5.0):
    """Sends raw request bytes; returns (status, headers dict lower-case, body, sock)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if ssl:
        ctx = ssl_mod.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl_mod.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    sock.sendall(raw if isinstance(raw, bytes) else raw.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest, sock


def handshake_request(path="/ws/echo", host="127.0.0.1", key=None, extra=None, version="13",
                      method="GET", proto="HTTP/1.1", upgrade="websocket", connection="Upgrade"):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = [f"{method} {path} {proto}"]
    if host is not None:
        lines.append(f"Host: {host}")
    if upgrade is not None:
        lines.append(f"Upgrade: {upgrade}")
    if connection is not None:
        lines.append(f"Connection: {connection}")
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def accept_for(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, key=None):
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = key if key is not None else os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(payload, key):
    if not payload:
        return b""
    k = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(len(payload), "big")


class FrameIO:
    """RFC 6455 frames over a byte stream, built and parsed here byte for
    byte. A subclass gives send_raw(data), a buffer self.buf of received
    bytes not parsed yet, and _fill(n, deadline), which reads until buf holds
    n bytes (TimeoutError at the deadline, Closed when the peer is gone):
    WS on a TCP socket, h2client.H2WS on an HTTP/2 stream."""

    def send(self, opcode, payload=b"", **kw):
        self.send_raw(encode_frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send(TEXT, text.encode() if isinstance(text, str) else text)

    def recv_frame(self, timeout=5.0):
        """Returns (fin, opcode, payload, rsv) of the next server frame."""
        deadline = time.time() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not (b1 & 0x80), "server frames must not be masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._fill(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload, (b0 >> 4) & 0x7

    def recv_message(self, timeout=5.0):
        """Next data message (opcode, payload), reassembled; answers nothing."""
        deadline = time.time() + timeout
        parts, op = [], None
        while True:
            fin, opcode, payload, _ = self.recv_frame(max(0.01, deadline - time.time()))
            if opcode in (PING, PONG):
                continue
            if opcode == CLOSE:
                raise AssertionError(f"unexpected close {close_code(payload)}")
            if op is None:
                op = opcode
            parts.append(payload)
            if fin:
                return op, b"".join(parts)

    def expect_close(self, timeout=5.0):
        """Reads until a close frame; returns (code, reason). Data frames before it are skipped."""
        deadline = time.time() + timeout
        while True:
            _, opcode, payload, _ = self.recv_frame(max(0.01, deadline - time.time()))
            if opcode == CLOSE:
                return close_code(payload)


class WS(FrameIO):
    """A connected WebSocket over a raw socket."""

    def __init__(self, port, path="/ws/echo", ssl=False, extra=None, timeout=5.0, host="127.0.0.1"):
        raw, key = handshake_request(path=path, extra=extra, host=host)
        status, headers, rest, sock = http_request(port, raw, ssl=ssl, timeout=timeout)
        self.status, self.headers, self.sock = status, headers, sock
        self.buf = rest
        if status != 101:
            raise AssertionError(f"handshake failed: {status} {headers} {rest!r}")
        assert headers.get("sec-websocket-accept") == accept_for(key), headers

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no frame from the server in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise Closed()
            self.buf += chunk

    def expect_tcp_close(self, timeout=5.0):
        """True when the server closes TCP within timeout (after its close frame)."""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.time()))
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        return False

    def close(self, code=1000, reason=b""):
        payload = struct.pack("!H", code) + reason if code else b""
        try:
            self.send(CLOSE, payload)
        except OSError:
            pass

    def shutdown(self):
        try:
            self.sock.close()
        except OSError:
            pass


def close_code(payload):
    if len(payload) >= 2:
        return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")
    return None, ""


# --- helpers added for the endpoint test suite (test_handshake.py & co.) ---

def valid_key():
    return base64.b64encode(os.urandom(16)).decode()


def read_http_response(port, raw, ssl=False, timeout=5.0):
    """Sends raw request bytes and reads one whole response (Content-Length,
    chunked, or until EOF). Returns (status, headers lower-case, body, sock)."""
    status, headers, rest, sock = http_request(port, raw, ssl=ssl, timeout=timeout)
    deadline = time.time() + timeout

    def more():
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("response body did not arrive in time")
        sock.settimeout(left)
        try:
            return sock.recv(65536)
        except (ConnectionResetError, ssl_mod.SSLError):
            return b""

    body = rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            chunk = more()
            if not chunk:
                break
            body += chunk
        return status, headers, body[:n], sock
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = b""
        while True:
            while b"\r\n" not in body:
                chunk = more()
                if not chunk:
                    return status, headers, out, sock
                body += chunk
            line, _, body = body.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            while len(body) < size + 2:
                chunk = more()
                if not chunk:
                    return status, headers, out + body[:size], sock
                body += chunk
            out += body[:size]
            body = body[size + 2:]
            if size == 0:
                return status, headers, out, sock
    if status in (101, 204, 304) or 100 <= status < 200:
        return status, headers, body, sock
    while True:
        chunk = more()
        if not chunk:
            return status, headers, body, sock
        body += chunk


def ws_next_close(ws, timeout=5.0):
    """The next server frame must be a close frame; returns (code, reason).
    Pings/pongs/data before it fail the test (use expect_close to skip them)."""
    fin, opcode, payload, rsv = ws.recv_frame(timeout)
    if opcode != CLOSE:
        raise AssertionError(f"expected a close frame, got opcode {opcode:#x} "
                             f"fin={fin} payload={payload[:60]!r}")
    assert fin and rsv == 0, f"close frame with fin={fin} rsv={rsv}"
    assert len(payload) != 1 and len(payload) <= 125, f"malformed close payload {payload!r}"
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionError(f"close reason is not valid UTF-8: {payload[2:]!r}")
    return close_code(payload)


def ws_rest_until_eof(ws, timeout=5.0):
    """Reads until the server closes TCP; returns every byte received after
    what was already parsed (must be b"" after a close frame). Raises
    TimeoutError when the server keeps the connection open."""
    deadline = time.time() + timeout
    data, ws.buf = ws.buf, b""
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError(f"server did not close TCP within {timeout}s "
                               f"(got {len(data)} more bytes)")
        ws.sock.settimeout(left)
        try:
            chunk = ws.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data
        except (socket.timeout, TimeoutError):
            continue
        except ssl_mod.SSLError:
            return data
        if not chunk:
            return data
        data += chunk


def recv_at_least(sock, n, buf=b"", timeout=5.0):
    """Reads a raw socket onto buf until it holds n bytes, the peer closes
    or timeout passes (then socket.timeout is raised); returns buf."""
    deadline = time.time() + timeout
    while len(buf) < n and time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def ws_connect_retry(port, timeout=5.0, interval=0.1, what=None, **kw):
    """WS(port, **kw), retried every `interval` s while the handshake fails
    (a 503 from a child still stopping, a connection slot not given back
    yet). After `timeout` s the last failure is raised, prefixed with
    `what` if given."""
    deadline = time.time() + timeout
    while True:
        try:
            return WS(port, **kw)
        except AssertionError as e:
            if time.time() > deadline:
                if what is None:
                    raise
                raise AssertionError(f"{what}: {e}") from e
            time.sleep(interval)
