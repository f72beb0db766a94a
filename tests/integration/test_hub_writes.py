"""Hub writes (WSBridgeHubWrites, README "Design in a page"): the hub writes
chat frames to the socket itself, on a plain connection as they are, over
TLS as the records mod_ssl makes of them (a filter below mod_ssl hands them
to the hub); with the directive off it wakes the connection's thread
instead. All three kinds of connection must see one room in the same order,
and a reader that stops reading must get every byte, in order, once it
reads again (the hub hands a partial write back to the connection's thread:
over TLS, records already made, which must not be encrypted twice)."""
import asyncio
import ssl
import time

from chatclient import (FAST_CHAT, ChatClient, chat_location, check_total_order, close_all,
                        n_messages, run, status_json, uniq)
from harness import no_child_crash, shared_apache
from run import time_limit
from wsclient import TEXT, WS

EXTRA = (
    "LogLevel warn wsbridge:debug\n"
    + FAST_CHAT
    + chat_location("/ws/nohub", "WSBridgeRateLimit 1000 1000", "WSBridgeHubWrites Off")
    + chat_location("/ws/bigq", "WSBridgeRateLimit off", "WSBridgeMaxQueuedBytes 64M"))

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
    assert "hub writes not possible here" not in log, "a TLS connection was not lent to the hub"
    no_child_crash(apache)


def reader_that_pauses(use_tls):
    """More than the socket buffers hold arrives while a reader does not
    read: the hub's write stalls, the rest goes back to the connection's
    thread, and nothing is lost, repeated or torn."""
    room = uniq("pause")
    count, size = 2500, 4000  # 10 MB: beyond loopback's socket buffers
    before = status_json(apache.port)["apps"]["chat"]

    port = apache.ssl_port if use_tls else apache.port
    slow = WS(port, "/ws/bigq?name=slow", ssl=use_tls)
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


@time_limit(60)
def test_reader_that_pauses_gets_every_byte_in_order():
    reader_that_pauses(False)


@time_limit(60)
def test_tls_reader_that_pauses_gets_every_byte_in_order():
    # A torn or twice-encrypted record would fail the TLS layer's checks.
    reader_that_pauses(True)


@time_limit(40)
def test_tls_deliveries_are_written_by_the_hub():
    """Over TLS too the hub writes what it delivers, without waking the
    connection's thread for each message (the hub_writes counter)."""
    room = uniq("tlshub")
    before = status_json(apache.port)["apps"]["chat"]

    async def go():
        readers = await asyncio.gather(*(ChatClient.connect(apache.ssl_port, path="/ws/fast", name=f"t{i}",
                                                            ssl=tls()) for i in range(5)))
        sender = await ChatClient.connect(apache.port, path="/ws/fast", name="plain")
        try:
            for c in readers + [sender]:
                await c.join(room, timeout=10)
            for k in range(200):
                await sender.message(room, f"m{k}")
                if k % 20 == 19:
                    await asyncio.sleep(0.02)  # batches of different sizes
            await asyncio.gather(*(c.wait_events(room, lambda evs: n_messages(evs) >= 200, timeout=20)
                                   for c in readers))
            for c in readers:
                texts = [e["text"] for e in c.events[room] if e["type"] == "message"]
                assert texts == [f"m{k}" for k in range(200)], f"{c.you}: {texts[:5]}..."
        finally:
            await close_all(readers + [sender])
    run(go(), timeout=38)
    after = status_json(apache.port)["apps"]["chat"]
    # 5 TLS readers x 200 messages; the plain sender's own copies add up to
    # 200 more. Most TLS deliveries must be the hub's own writes.
    assert after["hub_writes"] - before["hub_writes"] >= 5 * 200 // 2, (before, after)
    no_child_crash(apache)
