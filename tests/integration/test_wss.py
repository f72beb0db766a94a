"""wss://: the echo endpoint through mod_ssl (self-signed certificate on
.ssl_port). Reads go through the filter chain, so everything that works on
ws:// must work here too, including bytes mod_ssl has already decrypted
while the socket shows nothing new."""
import asyncio
import os
import ssl

import websockets

from harness import shared_apache
from wsclient import (BINARY, CONT, PING, PONG, TEXT, WS, accept_for, encode_frame,
                      handshake_request, read_http_response, recv_at_least,
                      ws_next_close, ws_rest_until_eof)

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), ssl=True)


def connect():
    return WS(apache.ssl_port, ssl=True)


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_raw_echo_text_and_binary():
    w = connect()
    try:
        for payload in (b"", b"hello over tls", "wörld €".encode()):
            w.send(TEXT, payload)
            assert w.recv_message() == (TEXT, payload)
        for n in (1, 125, 126, 65535, 65536):
            data = os.urandom(n)
            w.send(BINARY, data)
            assert w.recv_message() == (BINARY, data), f"binary {n}"
    finally:
        w.shutdown()


def test_raw_one_mib_message():
    w = connect()
    try:
        data = os.urandom(1 << 20)
        w.send(BINARY, data)
        op, got = w.recv_message(timeout=15)
        assert op == BINARY and got == data, f"1 MiB echo over TLS: got {len(got)} bytes"
    finally:
        w.shutdown()


def test_raw_fragmented_with_ping():
    w = connect()
    try:
        w.send(TEXT, "frag-", fin=False)
        w.send(PING, b"tls-ping")
        w.send(CONT, "mented", fin=True)
        fin, op, payload, _ = w.recv_frame()
        assert (op, payload) == (PONG, b"tls-ping"), (op, payload)
        assert w.recv_message() == (TEXT, b"frag-mented")
    finally:
        w.shutdown()


def test_many_frames_in_one_tls_write():
    # Many frames in one TLS record: after the first read mod_ssl holds the
    # rest decrypted, and poll() on the socket shows nothing more.
    w = connect()
    try:
        msgs = [f"tls message {i}".encode() for i in range(100)]
        w.send_raw(b"".join(encode_frame(TEXT, m) for m in msgs))
        for i, m in enumerate(msgs):
            got = w.recv_message(timeout=3)
            assert got == (TEXT, m), f"message {i}: got {got!r}"
    finally:
        w.shutdown()


def test_frame_pipelined_with_tls_handshake_request():
    raw, key = handshake_request()
    status, headers, rest, sock = read_http_response(apache.ssl_port, raw + encode_frame(TEXT, b"early"),
                                                     ssl=True)
    try:
        assert status == 101 and headers.get("sec-websocket-accept") == accept_for(key), (status, headers)
        buf = recv_at_least(sock, 7, rest, timeout=3)
        assert buf == b"\x81\x05early", f"echo of the frame sent with the request: {buf!r}"
    finally:
        sock.close()


def test_protocol_error_1002_over_tls():
    w = connect()
    try:
        w.send(TEXT, b"x", mask=False)
        code, _ = ws_next_close(w)
        assert code == 1002, f"unmasked frame over TLS: close {code}"
        assert ws_rest_until_eof(w, timeout=5) == b""
    finally:
        w.shutdown()


def test_close_handshake_over_tls():
    w = connect()
    try:
        w.close(1000)
        assert ws_next_close(w) == (1000, "")
        assert ws_rest_until_eof(w, timeout=5) == b""
    finally:
        w.shutdown()


def test_plain_get_over_tls_gets_426():
    raw = f"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:{apache.ssl_port}\r\n\r\n".encode()
    status, headers, body, sock = read_http_response(apache.ssl_port, raw, ssl=True)
    sock.close()
    assert status == 426 and headers.get("sec-websocket-version") == "13", (status, headers, body)


def test_https_origin_of_same_host_allowed():
    host = f"127.0.0.1:{apache.ssl_port}"
    raw, key = handshake_request(host=host, extra={"Origin": f"https://{host}"})
    status, headers, body, sock = read_http_response(apache.ssl_port, raw, ssl=True)
    sock.close()
    assert status == 101, (status, headers, body)


def test_websockets_library_over_tls():
    async def go():
        uri = f"wss://127.0.0.1:{apache.ssl_port}/ws/echo"
        async with websockets.connect(uri, ssl=insecure_context(), max_size=None,
                                      open_timeout=5, close_timeout=5, ping_interval=None) as ws:
            await ws.send("hello wss")
            assert await asyncio.wait_for(ws.recv(), 5) == "hello wss"
            big = os.urandom(1 << 20)
            await ws.send(big)
            assert await asyncio.wait_for(ws.recv(), 10) == big
            await ws.send(["frag", "mented", " over", " tls"])
            assert await asyncio.wait_for(ws.recv(), 5) == "fragmented over tls"
            waiter = await ws.ping(b"tls")
            await asyncio.wait_for(waiter, 3)
            await ws.close()
            assert ws.close_code == 1000, ws.close_code
    asyncio.run(asyncio.wait_for(go(), 30))


def test_concurrent_tls_clients():
    async def client(n):
        uri = f"wss://127.0.0.1:{apache.ssl_port}/ws/echo"
        async with websockets.connect(uri, ssl=insecure_context(), open_timeout=5,
                                      close_timeout=5, ping_interval=None) as ws:
            msgs = [f"c{n}-{i}" for i in range(50)]
            for m in msgs:
                await ws.send(m)
            got = [await asyncio.wait_for(ws.recv(), 5) for _ in msgs]
            assert got == msgs, f"client {n} order"

    async def go():
        await asyncio.gather(*(client(n) for n in range(5)))
    asyncio.run(asyncio.wait_for(go(), 30))
