"""WSBridgeBusFile (docs/chat-protocol.md, "Resume after a reconnect"; README):
the shared-memory bus in a file. A full stop and start (`apache2 -k stop`,
start) then keeps it as a graceful restart does: the same bus id, seqs that
continue, the rooms' history, and the message ids (a resend of a cid sent
before the stop gets the original). A server that did not stop in order
(its parent and children killed) gets a new bus, logged with the reason;
a second server on the same file does not start; a bad path is a
configuration error."""
import asyncio
import os
import signal
import tempfile
import time

from chatclient import ChatClient, close_all, run, stage, status_json, uniq
from harness import BASE, Apache, configtest
from run import time_limit


def bus_conf(path):
    return f"WSBridgeBusFile {path}\n"


def new_bus_dir():
    os.makedirs(BASE, exist_ok=True)
    return tempfile.mkdtemp(prefix="busfile-", dir=BASE)


async def talk(port, room, texts, cids):
    """Joins room, sends texts with cids, waits for all of them; returns the
    client, the bus id and the messages' seqs."""
    c = await ChatClient.connect(port, name="bf-user")
    await c.join(room)
    for text, cid in zip(texts, cids):
        await c.send({"type": "message", "room": room, "text": text, "cid": cid})
    await c.wait_events(room, lambda ev: sum(e.get("type") == "message" for e in ev) >= len(texts))
    return c, c.bus, [e["seq"] for e in c.events[room] if e.get("type") == "message"]


async def bus_of(port):
    """The bus id a fresh connection is welcomed with."""
    c = await ChatClient.connect(port)
    await c.close()
    return c.bus


def kill_all(a):
    """What a crash leaves: the parent and its children gone at once,
    nothing closed."""
    pids = [a.pid()] + a.child_pids()
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.05)


@time_limit(120)
def test_a_full_stop_and_start_keeps_the_bus_its_history_and_message_ids():
    path = os.path.join(new_bus_dir(), "chat.bus")
    a = Apache(extra_conf=bus_conf(path), children=2, threads=10).start()
    try:
        room = uniq("busfile")
        assert a.wait_log(f"bus file {path}: a new bus", timeout=5), a.error_log()[-2000:]

        async def before():
            c, bus, seqs = await talk(a.port, room, ["one", "two", "three"], ["c-1", "c-2", "c-3"])
            await c.close()
            return bus, seqs

        stage("before the stop")
        bus, seqs = run(before())
        stage("hard stop and start")
        a.stop()
        assert os.path.getsize(path) > 0
        a.start()
        assert a.wait_log(f"bus file {path} reopened: bus {bus} continues after seq", timeout=5), a.error_log()[-2000:]

        async def after():
            buses = set()
            for _ in range(4):
                c = await ChatClient.connect(a.port)
                buses.add(c.bus)
                await c.close()
            assert buses == {bus}, f"a full stop and start with WSBridgeBusFile must keep the bus: {bus} -> {buses}"
            st = status_json(a.port)["bus"]
            assert st["type"] == "shm" and st["file"] == path and st["id"] == bus, st
            # An exact resume across the stop: nothing after since is missing.
            back = await ChatClient.connect(a.port, name="bf-reader")
            h, j, _ = await back.join(room, since=seqs[0], bus=bus)
            assert h["complete"] is True, h
            got = [m["seq"] for m in h["messages"] if m.get("type") == "message"]
            assert got == seqs[1:], f"history after since {seqs[0]}: {got}, sent {seqs}"
            assert j["seq"] > seqs[-1], f"seqs must continue: join {j['seq']} after {seqs}"
            # The sender comes back and sends "two" again with its cid: the
            # original is answered, nothing is published again.
            sender = await ChatClient.connect(a.port, name="bf-user")
            await sender.join(room)
            await sender.send({"type": "message", "room": room, "text": "two again", "cid": "c-2"})
            again = await sender.next(lambda f: f.get("type") == "message" and f.get("cid") == "c-2", timeout=5)
            assert again["seq"] == seqs[1] and again["text"] == "two", again
            await sender.send({"type": "message", "room": room, "text": "four", "cid": "c-4"})
            four = await back.next(lambda f: f.get("type") == "message" and f.get("room") == room, timeout=5)
            assert four["text"] == "four", f"the reader got {four} (a repeat of c-2 must not be published)"
            await close_all([back, sender])

        stage("after the start")
        run(after())

        # A graceful restart keeps the mapping (no close), and the stop
        # after it still closes the file cleanly.
        stage("graceful restart, then stop and start")
        a.graceful()
        time.sleep(1.0)
        assert run(bus_of(a.port)) == bus
        a.stop()
        a.start()
        assert run(bus_of(a.port)) == bus, a.error_log()[-2000:]
        assert a.error_log().count(f"bus file {path} reopened: bus {bus}") == 2, a.error_log()[-3000:]
    finally:
        a.stop()


@time_limit(120)
def test_a_crash_gets_a_new_bus_and_a_second_server_is_refused():
    path = os.path.join(new_bus_dir(), "chat.bus")
    a = Apache(extra_conf=bus_conf(path), children=2, threads=10).start()
    b = None
    try:
        old = run(bus_of(a.port))
        stage("a second server on the same file")
        b = Apache(extra_conf=bus_conf(path), children=1, threads=4)
        try:
            b.start()
            started = True
        except RuntimeError:
            started = False
        assert not started, "a second server started on a bus file in use"
        assert "another server uses it" in b.error_log(), b.error_log()[-2000:]
        assert run(bus_of(a.port)) == old, "the first server's bus changed"

        stage("a crash (parent and children killed)")
        kill_all(a)
        a.start()
        new = run(bus_of(a.port))
        assert new != old, "a bus file that was not closed cleanly must not be trusted"
        assert a.wait_log(f"bus file {path}: a new bus {new} (it was not closed cleanly", timeout=5), \
            a.error_log()[-2000:]
    finally:
        if b:
            b.stop()
        a.stop()


@time_limit(90)
def test_a_graceful_restart_with_another_size_makes_a_new_file_and_stays_up():
    """The old children still write to the old file (and hold its lock), so
    a new size cannot be made over it: the file is replaced by a new one
    under the same name, the server stays up, a stop and start then
    continues the new bus."""
    path = os.path.join(new_bus_dir(), "chat.bus")
    a = Apache(extra_conf=bus_conf(path) + "WSBridgeBusSize 1M\n", children=2, threads=10).start()
    try:
        old = run(bus_of(a.port))
        with open(os.path.join(a.dir, "extra.conf"), "w") as f:
            f.write(bus_conf(path) + "WSBridgeBusSize 2M\n")
        a.graceful()
        assert a.wait_log("bus size, file or layout changed", timeout=10), a.error_log()[-2000:]
        deadline = time.time() + 10
        new = old
        while time.time() < deadline and new == old:
            new = run(bus_of(a.port))
            time.sleep(0.2)
        assert new != old, "a new size must make a new bus"
        assert a.wait_log(f"bus file {path}: a new bus {new} (a new file)", timeout=5), a.error_log()[-2000:]
        assert "another server uses it" not in a.error_log(), a.error_log()[-2000:]
        a.stop()
        a.start()
        assert run(bus_of(a.port)) == new, a.error_log()[-2000:]
    finally:
        a.stop()


def test_config_errors_are_precise():
    ok, out = configtest("WSBridgeBusFile /nonexistent-dir/chat.bus\n")
    assert not ok and "WSBridgeBusFile: '/nonexistent-dir/chat.bus' must name a file in an existing directory" in out, out
    ok, out = configtest(f"WSBridgeBusFile {BASE}\n")
    assert not ok and "exists and is not a regular file" in out, out
    ok, out = configtest(f"WSBridgeBusFile {os.path.join(new_bus_dir(), 'x.bus')}\n")
    assert ok, out
