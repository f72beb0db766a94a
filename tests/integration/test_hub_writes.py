"""Hub writes (WSBridgeHubWrites, README "Design in a page"): on a plain
connection the hub writes chat frames to the socket itself; over TLS, or
with the directive off, it wakes the connection's thread instead. All three
kinds of connection must see one room in the same order, and a reader that
stops reading must get every byte, in order, once it reads again (the hub
hands a partial write back to the connection's thread)."""
import asyncio
import ssl
import time

from chatclient import (ChatClient, check_total_order, close_all, n_messages, run, status_json,
                        uniq)
from harness import no_child_crash, shared_apache
from run import time_limit
from wsclient import TEXT, WS

EXTRA = """
LogLevel warn wsbridge:debug
<Location /ws/fast>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeRateLimit 1000 1000
</Location>
<Location /ws/nohub>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeRateLimit 1000 1000
  WSBridgeHubWrites Off
</Location>
<Location /ws/bigq>
  SetHandler wsbridge
  WSBridgeApp chat
  WSBridgeRateLimit off
  WSBridgeMaxQueuedBytes 64M
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, ssl=True, children=2,
                                              threads=25)


def tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@time_limit(40)
def test_plain_tls_and_off_share_one_order():
    room = uniq("mixed")
    per_client = 15

    async def go():
        kinds = ([(apache.port, "/ws/fast", {})] * 4 + [(apache.port, "/ws/nohub", {})] * 4 +
                 [(apache.ssl_port, "/ws/fast", {"ssl": tls()})] * 4)
        clients = await asyncio.gather(*(ChatClient.connect(port, path=path, name=f"k{i}", **kw)
                                         for i, (port, path, kw) in enumerate(kinds)))
        try:
            for c in clients:  # one after the other: every join is seen by the later ones
                await c.join(room, timeout=10)

            async def talk(c):
                for k in range(per_client):
                    # sizes from a few bytes to ~4 KB: some frames span socket writes
                    await c.message(room, f"{c.you}-{k}-" + "x" * ((k * 277) % 4000))
            await asyncio.gather(*(talk(c) for c in clients))
            total = per_client * len(clients)
            await asyncio.gather(*(c.wait_events(room, lambda evs: n_messages(evs) >= total, timeout=20)
                                   for c in clients))
            order = check_total_order(clients, room)
            texts = [e["text"] for e in order if e["type"] == "message"]
            assert len(texts) == total
            for c in clients:
                mine = [t.split("-")[1] for t in texts if t.startswith(c.you + "-")]
                assert mine == [str(k) for k in range(per_client)], f"{c.you}: {mine}"
        finally:
            await close_all(clients)
    run(go(), timeout=38)
    log = apache.error_log()
    assert "hub writes on" in log, "no plain connection was written by the hub"
    assert "hub writes off" in log, "WSBridgeHubWrites Off was not honoured"
    assert "hub writes not possible here" in log, "a TLS connection was lent to the hub"
    no_child_crash(apache)


@time_limit(60)
def test_reader_that_pauses_gets_every_byte_in_order():
    """More than the socket buffers hold arrives while a reader does not
    read: the hub's write stalls, the rest goes back to the connection's
    thread, and nothing is lost, repeated or torn."""
    room = uniq("pause")
    count, size = 2500, 4000  # 10 MB: beyond loopback's socket buffers
    before = status_json(apache.port)["apps"]["chat"]

    slow = WS(apache.port, "/ws/bigq?name=slow")
    slow.recv_message()  # welcome
    slow.send_text('{"type":"join","room":"%s"}' % room)
    deadline = time.time() + 10
    while b'"presence"' not in slow.recv_message(timeout=max(0.1, deadline - time.time()))[1]:
        pass

    async def go():
        sender = await ChatClient.connect(apache.port, path="/ws/bigq", name="sender")
        try:
            await sender.join(room)
            for k in range(count):
                await sender.message(room, f"{k}:" + chr(ord("a") + k % 26) * size)
            await sender.wait_events(room, lambda evs: n_messages(evs) >= count, timeout=40)
        finally:
            await close_all([sender])
    run(go(), timeout=50)  # the slow reader has read nothing meanwhile

    got = 0
    deadline = time.time() + 30
    while got < count:
        op, payload = slow.recv_message(timeout=max(0.1, deadline - time.time()))
        assert op == TEXT
        if b'"type":"message"' not in payload:
            continue
        text = payload.decode()
        want = f'"text":"{got}:' + chr(ord("a") + got % 26) * size + '"'
        assert want in text, f"message #{got} wrong or out of order: {text[:120]}"
        got += 1
    slow.close()
    after = status_json(apache.port)["apps"]["chat"]
    assert after["hub_writes"] > before["hub_writes"], "the hub wrote nothing itself"
    assert after["hub_handbacks"] > before["hub_handbacks"], \
        "the socket never filled: this test did not exercise the hand-back"
    no_child_crash(apache)
