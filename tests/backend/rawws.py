"""A tiny blocking WebSocket client over a raw socket, for looking at exactly
what a server sends: the whole handshake answer (also a refusal with its
body), every frame with its opcode, and an abrupt TCP close."""
import base64
import os
import socket
import struct

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class RawWs:
    def __init__(self, port, path="/", headers=(), timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        head = self._read_until(b"\r\n\r\n")
        status_line, *hlines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = [tuple(h.split(": ", 1)) for h in hlines if h]
        self.body = b""
        if self.status != 101:
            n = int(dict((k.lower(), v) for k, v in self.headers).get("content-length", "0"))
            self.body = self._read_exact(n)

    def _read_more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _read_until(self, marker):
        while marker not in self.buf:
            self._read_more()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._read_more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, opcode, payload=b"", fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_close(self, code=None, reason=b""):
        self.send(OP_CLOSE, b"" if code is None else struct.pack("!H", code) + reason)

    def recv(self):
        """(opcode, fin, payload); raises EOFError when the server closed TCP."""
        b0, b1 = self._read_exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        return b0 & 0x0F, bool(b0 & 0x80), self._read_exact(n)

    def recv_until_eof(self, limit=50):
        frames = []
        try:
            for _ in range(limit):
                frames.append(self.recv())
        except (EOFError, socket.timeout, ConnectionResetError) as e:
            frames.append(("end", type(e).__name__))
        return frames

    def close(self):
        self.sock.close()
