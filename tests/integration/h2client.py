"""WebSockets over HTTP/2 (RFC 8441) for the tests: a blocking client on one
TLS connection (ALPN h2) with python3-h2 doing the HTTP/2 framing. Each
WebSocket is an extended CONNECT stream (:protocol websocket); its DATA
carries RFC 6455 frames, built and parsed byte for byte by wsclient.FrameIO,
the same code as wsclient.WS uses on a TCP socket, so the tests control
every frame (bad masks, opcodes).

    conn = H2Conn(apache.ssl_port)
    ws = conn.websocket("/ws/echo")        # H2WS, the same calls as wsclient.WS
    ws.send(TEXT, b"hi"); ws.recv_message()
"""
import socket
import ssl as ssl_mod
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from wsclient import CLOSE, Closed, FrameIO


class _Connection(h2.connection.H2Connection):
    """python3-h2 4.1 closes the whole connection state on GOAWAY, while RFC
    9113 §6.8 lets the streams up to its last_stream_id finish: a graceful
    restart's GOAWAY comes before the close frames of the open WebSockets.
    A NO_ERROR GOAWAY leaves the state open for them; no new stream may
    start (websocket() checks goaway)."""

    def _receive_goaway_frame(self, frame):
        frames, events = super()._receive_goaway_frame(frame)
        if frame.error_code == 0:
            self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return frames, events


class StreamRefused(AssertionError):
    """The server answered the CONNECT with something other than 200."""

    def __init__(self, status, headers, body):
        super().__init__(f"extended CONNECT answered {status} {headers} {body[:200]!r}")
        self.status, self.headers, self.body = status, headers, body


class H2Conn:
    """One HTTP/2 connection over TLS; WebSockets are streams on it."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, window=1 << 24):
        ctx = ssl_mod.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl_mod.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        if self.sock.selected_alpn_protocol() != "h2":
            got = self.sock.selected_alpn_protocol()
            self.sock.close()
            raise AssertionError(f"the server did not negotiate h2 (ALPN {got!r})")
        self.authority = f"{host}:{port}"
        self.h2 = _Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        # Large windows by default, so a test that does not read for a while
        # does not stall the server on flow control (acknowledge_received_data
        # opens them again as data is read); window=65535 keeps HTTP/2's.
        if window != 65535:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.h2.increment_flow_control_window(1 << 24)
        self._flush()
        self.streams = {}          # stream id -> H2WS
        self.closed = False        # the TCP connection is gone
        self.goaway = None         # h2.events.ConnectionTerminated, when the server sent one
        self._settings_seen = False
        deadline = time.time() + timeout
        while not self._settings_seen:
            self.pump(deadline)

    @property
    def connect_protocol_enabled(self):
        """SETTINGS_ENABLE_CONNECT_PROTOCOL from the server (RFC 8441 §3)."""
        return bool(self.h2.remote_settings.enable_connect_protocol)

    def _flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, deadline):
        """Reads once from the socket (waits until deadline) and dispatches the events."""
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("nothing from the server in time")
        if self.closed:
            raise Closed()
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, TimeoutError):
            raise TimeoutError("nothing from the server in time")
        except (ConnectionResetError, ssl_mod.SSLError):
            data = b""
        if not data:
            self.closed = True
            for s in self.streams.values():
                s.ended = True
            raise Closed()
        for ev in self.h2.receive_data(data):
            self._event(ev)
        self._flush()

    def _event(self, ev):
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self._settings_seen = True
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        s = self.streams.get(getattr(ev, "stream_id", None))
        if s is None:
            return
        if isinstance(ev, h2.events.ResponseReceived):
            s.status = int(dict(ev.headers)[":status"])
            s.response_headers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            s.buf += ev.data
            s.bytes_received += len(ev.data)
            # The test reads at its own pace; the windows stay open, unless
            # the test holds this stream (a client that stops reading).
            if s.hold:
                s.held += ev.flow_controlled_length
            else:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            s.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            s.ended = True
            s.reset_code = ev.error_code

    def websocket(self, path="/ws/echo", headers=None, timeout=5.0, expect=200):
        """Opens a WebSocket stream; with expect=200 it raises StreamRefused for any other answer."""
        if self.goaway is not None:
            raise AssertionError(f"the server sent GOAWAY: {self.goaway}")
        if not self.connect_protocol_enabled:
            raise AssertionError("the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL=1")
        sid = self.h2.get_next_available_stream_id()
        ws = H2WS(self, sid)
        self.streams[sid] = ws
        hdrs = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                (":path", path), (":authority", self.authority), ("sec-websocket-version", "13")]
        hdrs += [(k.lower(), v) for k, v in (headers or {}).items()]
        self.h2.send_headers(sid, hdrs)
        self._flush()
        deadline = time.time() + timeout
        while ws.status is None and not ws.ended:
            self.pump(deadline)
        if expect is not None and ws.status != expect:
            while not ws.ended and time.time() < deadline:
                try:
                    self.pump(deadline)
                except (TimeoutError, Closed):
                    break
            raise StreamRefused(ws.status, ws.response_headers, ws.buf)
        return ws

    def get(self, path, timeout=5.0):
        """A plain GET on this connection: (status, headers, body)."""
        sid = self.h2.get_next_available_stream_id()
        s = H2WS(self, sid)
        self.streams[sid] = s
        self.h2.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":path", path),
                                   (":authority", self.authority)], end_stream=True)
        self._flush()
        body = s.expect_stream_end(timeout)
        del self.streams[sid]
        return s.status, s.response_headers, body

    def ping(self, timeout=5.0):
        """An HTTP/2 PING round trip: the connection is alive and answering."""
        self.h2.ping(b"wsbridge")
        self._flush()
        before = self.h2.open_outbound_streams
        deadline = time.time() + timeout
        acked = []
        orig = self._event

        def grab(ev):
            if isinstance(ev, h2.events.PingAckReceived):
                acked.append(ev)
            orig(ev)
        self._event = grab
        try:
            while not acked:
                self.pump(deadline)
        finally:
            self._event = orig
        return before

    def close(self):
        try:
            self.h2.close_connection()
            self._flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class H2WS(FrameIO):
    """A WebSocket on one HTTP/2 stream: wsclient.WS's calls, and the stream's state."""

    def __init__(self, conn, stream_id):
        self.conn, self.stream_id = conn, stream_id
        self.status, self.response_headers = None, {}
        self.buf = b""
        self.bytes_received = 0
        self.ended = False          # the server ended the stream (END_STREAM or RST_STREAM)
        self.reset_code = None
        self.hold = False           # True: its DATA is not acknowledged (its window closes)
        self.held = 0

    def release(self):
        """Acknowledges what was held: the server may send again."""
        self.hold = False
        if self.held:
            self.conn.h2.acknowledge_received_data(self.held, self.stream_id)
            self.held = 0
            self.conn._flush()

    # -- sending --
    def send_raw(self, data):
        """Sends bytes as DATA frames, within the peer's flow-control windows."""
        c = self.conn
        deadline = time.time() + 10
        while data:
            window = min(c.h2.local_flow_control_window(self.stream_id), c.h2.max_outbound_frame_size)
            if window <= 0:
                c.pump(deadline)
                continue
            c.h2.send_data(self.stream_id, data[:window])
            data = data[window:]
            c._flush()

    def end_stream(self):
        """The client's END_STREAM: like a TCP FIN on an HTTP/1.1 WebSocket."""
        self.conn.h2.end_stream(self.stream_id)
        self.conn._flush()

    def reset(self):
        """RST_STREAM (CANCEL): the client drops this WebSocket, the connection lives on."""
        self.conn.h2.reset_stream(self.stream_id, 8)
        self.conn._flush()

    # -- receiving --
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            if self.ended:
                raise Closed()
            self.conn.pump(deadline)

    def expect_stream_end(self, timeout=5.0):
        """Reads until the server ends the stream; returns the bytes after what was parsed.
        Raises TimeoutError when the stream stays open."""
        deadline = time.time() + timeout
        while not self.ended:
            self.conn.pump(deadline)
        rest, self.buf = self.buf, b""
        return rest

    def close(self, code=1000, reason=b""):
        payload = struct.pack("!H", code) + reason if code else b""
        self.send(CLOSE, payload)

    def shutdown(self):
        """Drops this stream (RST_STREAM) unless the server ended it already."""
        if not self.ended and not self.conn.closed:
            try:
                self.reset()
            except (OSError, h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
