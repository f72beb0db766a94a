#!/usr/bin/python3
# A WebSocket-over-HTTP backend as a CGI script (mod_cgid): proves the
# bridge's sub-request body reaches a CGI's stdin and its output comes back
# captured. Accepts OPEN with GRIP and echoes every TEXT with the m: prefix.
import os
import sys

n = int(os.environ.get("CONTENT_LENGTH") or 0)
body = sys.stdin.buffer.read(n)
out = b""
at = 0
while at < len(body):
    eol = body.index(b"\r\n", at)
    line = body[at:eol]
    at = eol + 2
    name, _, hexlen = line.partition(b" ")
    data = b""
    if hexlen:
        size = int(hexlen, 16)
        data = body[at:at + size]
        at += size + 2
    if name == b"OPEN":
        out += b"OPEN\r\n"
    elif name == b"TEXT":
        msg = b"m:cgi:" + data
        out += b"TEXT %x\r\n%s\r\n" % (len(msg), msg)
sys.stdout.buffer.write(b"Content-Type: application/websocket-events\r\n"
                        b"Sec-WebSocket-Extensions: grip\r\n\r\n" + out)
