"""A WebSocket-over-HTTP backend whose answers a test scripts, for the cases
a real PHP backend cannot easily show (malformed bodies, odd event forms,
slow answers). It records every request exactly as it arrived: header names
in order and case, and the body bytes.

    be = ScriptedBackend(lambda req: (200, [("Content-Type", CT)], b"OPEN\\r\\n"))
    with be: ... be.requests ...

The responder gets a dict {method, path, headers: [(name, value)], body,
events} and returns (status, [(name, value)], body bytes), or None to drop
the TCP connection without an answer.
"""
import http.server
import re
import socketserver
import threading

CT = "application/websocket-events"
EVENT_LINE = re.compile(rb"([A-Z]+)(?: ([0-9A-Fa-f]+))?\r\n")


def parse_events(body):
    """Events of a request body as (name, content or None); raises on bad input."""
    out, at = [], 0
    while at < len(body):
        m = EVENT_LINE.match(body, at)
        if not m:
            raise ValueError("bad event line at %d: %r" % (at, body[at:at + 20]))
        at = m.end()
        if m.group(2) is None:
            out.append((m.group(1).decode(), None))
            continue
        n = int(m.group(2), 16)
        if body[at + n:at + n + 2] != b"\r\n":
            raise ValueError("event content not followed by CRLF")
        out.append((m.group(1).decode(), body[at:at + n]))
        at += n + 2
    return out


def event(name, content=None):
    if content is None:
        return name.encode() + b"\r\n"
    if isinstance(content, str):
        content = content.encode()
    return b"%s %x\r\n%s\r\n" % (name.encode(), len(content), content)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ScriptedBackend:
    def __init__(self, responder):
        self.responder = responder
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                req = {"method": self.command, "path": self.path,
                       "headers": list(self.headers.items()), "body": body}
                try:
                    req["events"] = parse_events(body)
                except ValueError as e:
                    req["events"] = None
                    req["parse_error"] = str(e)
                with outer.lock:
                    outer.requests.append(req)
                answer = outer.responder(req)
                if answer is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                status, headers, rbody = answer
                try:
                    self.send_response(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(rbody)))
                    self.end_headers()
                    self.wfile.write(rbody)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the proxy gave up on this request

            do_GET = do_POST

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
