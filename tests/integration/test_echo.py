"""Interoperability: the python3-websockets client library (asyncio) against
the echo endpoint through a real Apache. The library offers permessage-deflate
by default, so these run with compressed client messages; the last tests
check the negotiation and the inflated-size limit directly."""
import asyncio
import os
import zlib

import websockets

from harness import shared_apache
from run import time_limit
from wsclient import BINARY, TEXT, WS, encode_frame

EXTRA = """
<Location /ws/nodeflate>
  SetHandler wsbridge
  WSBridgeApp echo
  WSBridgeDeflate Off
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA)


def url(path="/ws/echo"):
    return f"ws://127.0.0.1:{apache.port}{path}"


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(**kw):
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("ping_interval", None)
    return websockets.connect(url(), **kw)


def test_text_and_binary_round_trip():
    async def go():
        async with connect() as ws:
            for text in ("hello", "", "wörld €😀", "x" * 70000):
                await ws.send(text)
                got = await asyncio.wait_for(ws.recv(), 5)
                assert got == text, f"text echo: sent {len(text)} chars, got {got[:40]!r}..."
            for data in (b"", b"\x00\xff", os.urandom(125), os.urandom(65536), os.urandom(1 << 20)):
                await ws.send(data)
                got = await asyncio.wait_for(ws.recv(), 5)
                assert isinstance(got, bytes) and got == data, \
                    f"binary echo of {len(data)} bytes: got {type(got).__name__} of {len(got)}"
            await ws.close()
            assert ws.close_code == 1000, f"close code {ws.close_code}"
    run(go())


@time_limit(30)
def test_ten_connections_hundred_messages_in_order():
    async def client(n):
        async with connect() as ws:
            sent = [f"conn{n}-msg{i}-" + "z" * (i * 13 % 300) for i in range(100)]

            async def sender():
                for m in sent:
                    await ws.send(m)
            task = asyncio.ensure_future(sender())
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in sent]
            await task
            assert got == sent, f"connection {n}: first mismatch at " \
                f"{next(i for i, (a, b) in enumerate(zip(got, sent)) if a != b)}"
            await ws.close()
            return ws.close_code

    async def go():
        codes = await asyncio.gather(*(client(n) for n in range(10)))
        assert codes == [1000] * 10, codes
    run(go(), timeout=25)


def test_fragmented_send():
    async def go():
        async with connect() as ws:
            parts = ["frag", "mented ", "tëxt", " ", "message"]
            await ws.send(parts)  # an iterable is sent as fragments
            assert await asyncio.wait_for(ws.recv(), 5) == "".join(parts)
            bparts = [os.urandom(1000) for _ in range(20)]
            await ws.send(bparts)
            assert await asyncio.wait_for(ws.recv(), 5) == b"".join(bparts)

            async def agen():
                for p in ("async ", "fragments"):
                    yield p
            await ws.send(agen())
            assert await asyncio.wait_for(ws.recv(), 5) == "async fragments"
    run(go())


def test_ping_via_library():
    async def go():
        async with connect() as ws:
            for payload in (b"ping-data", b"", b"p" * 125):
                waiter = await ws.ping(payload)
                await asyncio.wait_for(waiter, 3)
            await ws.send("after pings")
            assert await asyncio.wait_for(ws.recv(), 5) == "after pings"
    run(go())


def test_library_keepalive_pings_keep_connection_open():
    async def go():
        async with connect(ping_interval=0.2, ping_timeout=1) as ws:
            await asyncio.sleep(1.0)  # several library pings, all answered
            await ws.send("alive")
            assert await asyncio.wait_for(ws.recv(), 5) == "alive"
    run(go())


def test_close_codes_seen_by_library():
    async def go():
        async with connect() as ws:
            await ws.close(code=4000, reason="app done")
            assert ws.close_code == 4000, ws.close_code
        async with connect() as ws:
            # a protocol violation is reported by the server with 1007
            await ws.send("ok")
            await asyncio.wait_for(ws.recv(), 5)
            # websockets refuses to send invalid UTF-8 as text; write the raw
            # frame through its transport instead.
            ws.transport.write(bytes([0x81, 0x81, 0, 0, 0, 0, 0xFF]))
            try:
                await asyncio.wait_for(ws.recv(), 5)
                raise AssertionError("expected the server to close")
            except websockets.ConnectionClosed as e:
                assert e.rcvd is not None and e.rcvd.code == 1007, f"server close {e.rcvd}"
    run(go())


def test_subprotocol_not_offered_by_echo():
    async def go():
        async with connect() as ws:
            assert ws.subprotocol is None, ws.subprotocol
    run(go())


def agreed_extensions(ws):
    response = getattr(ws, "response", None)  # websockets >= 13
    headers = response.headers if response is not None else ws.response_headers
    return headers.get("Sec-WebSocket-Extensions")


@time_limit(30)
def test_permessage_deflate_agreed_and_messages_arrive_whole():
    async def go():
        async with connect() as ws:
            ext = agreed_extensions(ws) or ""
            assert ext.startswith("permessage-deflate"), f"not agreed: {ext!r}"
            assert "server_no_context_takeover" in ext and "client_no_context_takeover" in ext, ext
            for text in ("compress me " * 50000, "wörld €😀 " * 3000, ""):
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), 5) == text
        async with connect(compression=None) as ws:  # nothing offered, nothing answered
            assert agreed_extensions(ws) is None
            await ws.send("plain")
            assert await asyncio.wait_for(ws.recv(), 5) == "plain"
        async with websockets.connect(url("/ws/nodeflate"), open_timeout=5) as ws:
            assert agreed_extensions(ws) is None, "WSBridgeDeflate Off still agreed"
            await ws.send("x" * 1000)
            assert await asyncio.wait_for(ws.recv(), 5) == "x" * 1000
    run(go())


def deflate_message(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


@time_limit(30)
def test_compressed_frames_over_a_raw_socket_follow_the_rules():
    offer = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
    ws = WS(apache.port, "/ws/echo", extra=offer)
    assert ws.headers.get("sec-websocket-extensions", "").startswith("permessage-deflate")
    ws.send_raw(encode_frame(TEXT, deflate_message("héllo".encode()), rsv=4))
    assert ws.recv_message() == (TEXT, "héllo".encode())
    # a message inflating past WSBridgeMaxMessageSize (16M here) is 1009,
    # though only ~17 KB cross the wire
    ws.send_raw(encode_frame(BINARY, deflate_message(bytes(17 << 20)), rsv=4))
    code, _ = ws.expect_close(timeout=10)
    assert code == 1009, code

    ws = WS(apache.port, "/ws/echo", extra=offer)
    ws.send_raw(encode_frame(TEXT, deflate_message(b"bad \xc3\x28 utf-8"), rsv=4))
    code, _ = ws.expect_close()
    assert code == 1007, code

    ws = WS(apache.port, "/ws/echo", extra=offer)  # RSV1 on a continuation frame
    ws.send_raw(encode_frame(TEXT, b"ab", fin=False) + encode_frame(0, b"cd", rsv=4))
    code, _ = ws.expect_close()
    assert code == 1002, code

    ws = WS(apache.port, "/ws/nodeflate", extra=offer)  # not agreed: RSV1 is 1002
    assert "sec-websocket-extensions" not in ws.headers
    ws.send_raw(encode_frame(TEXT, deflate_message(b"x"), rsv=4))
    code, _ = ws.expect_close()
    assert code == 1002, code
