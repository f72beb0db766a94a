"""Bus identity (docs/chat-protocol.md, "Resume after a reconnect"; docs/reliability.md
section 2): the welcome names the bus; a hard stop and start of a shm
server makes a new bus numbering from 1 again, and a join whose `since`
comes with the old bus's id gets everything the room kept with
`complete: false` instead of a silent gap. A graceful restart keeps the
bus (the shared memory survives it): the same id, an exact resume. On a
Redis bus every server reports the id kept in Redis, and Redis that lost
its data comes back with a new one."""
import asyncio
import re
import signal
import socket

from chatclient import ChatClient, Closed, close_all, run, stage, status_json, uniq
from harness import Apache
from redis_server import RedisServer
from run import time_limit

HEX16 = re.compile(r"^[0-9a-f]{16}$")


def seqs(frames):
    return [f["seq"] for f in frames]


async def welcome_buses(port, n=6):
    """The bus ids n fresh connections were welcomed with (spread over the
    children as the MPM likes)."""
    clients = [await ChatClient.connect(port) for _ in range(n)]
    buses = {c.bus for c in clients}
    await close_all(clients)
    return buses


async def talk(port, room, n):
    """A client joins room and sends n messages; returns it and the seqs of
    its join and messages, once all of them came back."""
    c = await ChatClient.connect(port)
    _, j, _ = await c.join(room)
    for i in range(n):
        await c.message(room, f"m{i}")
    await c.wait_events(room, lambda ev: sum(e.get("type") == "message" for e in ev) >= n)
    return c, [j["seq"]] + [e["seq"] for e in c.events[room] if e.get("type") == "message"]


async def wait_gone(clients, timeout=10):
    """Reads until the server closed every client (a stop or restart)."""
    async def one(c):
        try:
            while True:
                await c._read(timeout)
        except (Closed, asyncio.TimeoutError):
            pass
    await asyncio.gather(*(one(c) for c in clients))


@time_limit(90)
def test_hard_restart_makes_a_new_bus_and_an_old_since_is_incomplete():
    a = Apache(children=2, threads=10).start()
    try:
        room = uniq("busid-hard")

        async def before():
            buses = await welcome_buses(a.port)
            assert len(buses) == 1, f"children disagree on the bus id: {buses}"
            old_bus = buses.pop()
            assert old_bus and HEX16.match(old_bus), f"welcome bus {old_bus!r} is not 16 hex digits"
            c, seen = await talk(a.port, room, 4)
            assert c.bus == old_bus
            assert status_json(a.port)["bus"]["id"] == old_bus, "the status page shows another bus id"
            await c.close()
            return old_bus, seen[-1]

        stage("old bus")
        old_bus, since = run(before())
        stage("hard stop and start")
        a.stop()
        a.start()

        async def after():
            buses = await welcome_buses(a.port)
            assert len(buses) == 1, f"children disagree on the bus id: {buses}"
            new_bus = buses.pop()
            assert HEX16.match(new_bus) and new_bus != old_bus, \
                f"a hard restart must make a new bus: {old_bus} -> {new_bus}"
            # The new bus numbers past the client's since.
            talker, new_seqs = await talk(a.port, room, since + 3)
            assert new_seqs[-1] > since, f"the new bus did not pass since {since}: {new_seqs}"
            kept = seqs(talker.histories[room][0]["messages"]) + new_seqs

            # Resume with the old bus's id: everything kept, complete false.
            back = await ChatClient.connect(a.port)
            h, j, _ = await back.join(room, since=since, bus=old_bus)
            assert h["complete"] is False, f"a since of another bus must not claim complete: {h}"
            got = seqs(h["messages"])
            assert got == sorted(kept), f"history after a foreign since: {got}, kept {kept}"
            assert [s for s in got if s <= since], "the new bus's events up to since are missing"

            # The same with this bus's id (or none, the old rule): exact.
            cur = await ChatClient.connect(a.port)
            mid = new_seqs[2]
            h2, _, _ = await cur.join(room, since=mid, bus=new_bus)
            assert h2["complete"] is True, h2
            assert seqs(h2["messages"]) == [s for s in sorted(kept + [j["seq"]]) if s > mid], h2

            # Without bus the old rule still applies (and shows the old
            # trap: the old since is taken for a seq of the new bus).
            legacy = await ChatClient.connect(a.port)
            h3, _, _ = await legacy.join(room, since=since)
            assert h3["complete"] is True and all(s > since for s in seqs(h3["messages"])), h3
            await close_all([talker, back, cur, legacy])

        stage("new bus")
        run(after())
    finally:
        a.stop()


@time_limit(90)
def test_graceful_restart_keeps_the_bus_and_the_resume_is_exact():
    a = Apache(children=2, threads=10).start()
    try:
        room = uniq("busid-graceful")

        async def scenario():
            c, seen = await talk(a.port, room, 3)
            other = await ChatClient.connect(a.port)
            await other.join(room)
            since, bus = seen[-1], c.bus
            stage("graceful restart")
            await asyncio.get_running_loop().run_in_executor(None, a.graceful)
            await wait_gone([c, other])
            stage("after graceful")
            buses = await welcome_buses(a.port)
            assert buses == {bus}, f"a graceful restart keeps the bus: {bus} -> {buses}"
            talker, missed = await talk(a.port, room, 4)
            back = await ChatClient.connect(a.port)
            h, j, _ = await back.join(room, since=since, bus=bus)
            assert h["complete"] is True, f"same bus: the resume is exact: {h}"
            got = seqs(h["messages"])
            # Everything after since: the other client's join, the leaves
            # of the restart, then the talker's join and messages.
            assert got and got[0] == since + 1 and got == sorted(set(got)) and got[-1] < j["seq"], got
            assert set(missed) <= set(got), (missed, got)
            leaves = [m for m in h["messages"] if m.get("event") == "leave"]
            assert len(leaves) == 2, f"the restart's two leaves are missed events too: {h}"
            await close_all([talker, back])

        run(scenario())
    finally:
        a.stop()


@time_limit(120)
def test_redis_bus_id_is_shared_and_renewed_when_redis_lost_its_data():
    # without persistence: a restart loses everything
    redis = RedisServer(persist=False).start()
    conf = f"WSBridgeBus {redis.url}\n"
    servers = [Apache(extra_conf=conf, children=2, threads=10) for _ in range(2)]
    try:
        for s in servers:
            s.start()
        room = uniq("busid-redis")

        async def before():
            buses = set()
            for s in servers:
                buses |= await welcome_buses(s.port, 4)
            assert len(buses) == 1 and HEX16.match(next(iter(buses))), f"one id per Redis: {buses}"
            c, seen = await talk(servers[0].port, room, 4)
            await c.close()
            return buses.pop(), seen[-1]

        old_bus, since = run(before())
        # Redis loses everything and both servers restart hard: numbering
        # starts at 1 again, under a new id.
        stage("redis and apache restart")
        for s in servers:
            s.stop()
        redis.stop(signal.SIGKILL)
        redis.start()
        for s in servers:
            s.start()

        async def after():
            buses = set()
            for s in servers:
                buses |= await welcome_buses(s.port, 4)
            assert len(buses) == 1, f"servers disagree after the loss: {buses}"
            new_bus = buses.pop()
            assert new_bus != old_bus and HEX16.match(new_bus), (old_bus, new_bus)
            talker, new_seqs = await talk(servers[1].port, room, since + 2)
            assert new_seqs[-1] > since, new_seqs
            back = await ChatClient.connect(servers[0].port)
            h, _, _ = await back.join(room, since=since, bus=old_bus)
            assert h["complete"] is False, h
            got = seqs(h["messages"])
            assert set(new_seqs) <= set(got) and min(got) <= since, (new_seqs, got)
            await close_all([talker, back])

        stage("new redis bus")
        run(after(), timeout=60)
    finally:
        for s in servers:
            s.stop()
        redis.close()


def redis_command(port, *args):
    """One command in RESP over a fresh loopback connection; the reply's
    first line (e.g. b"+OK", b":1")."""
    req = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req)
        return s.recv(256).split(b"\r\n")[0]


def test_redis_id_key_with_something_else_is_logged_and_no_id_is_made_up():
    # Another program's value under the bus's id key: the module never
    # overwrites it (SET NX), welcomes without a bus, says so in the error
    # log once per child, and takes an id of its own once the key is gone.
    redis = RedisServer(persist=False).start()
    key = "wsbridge:{chat}:id"
    assert redis_command(redis.port, "SET", key, "not-a-bus-id") == b"+OK"
    with Apache(extra_conf=f"WSBridgeBus {redis.url}\n", children=2, threads=10) as a:
        try:
            async def without_id():
                assert await welcome_buses(a.port, 4) == {None}
                room = uniq("busid-foreign")
                c, seen = await talk(a.port, room, 2)
                # A since that names a bus cannot be checked against none:
                # everything the room kept, complete: false.
                back = await ChatClient.connect(a.port)
                h, _, _ = await back.join(room, since=seen[0], bus="0123456789abcdef")
                assert h["complete"] is False and set(seen) <= set(seqs(h["messages"])), h
                await close_all([c, back])

            run(without_id())
            assert a.wait_log('holds "not-a-bus-id", not a bus id'), a.error_log()[-2000:]
            lines = [l for l in a.error_log().splitlines() if "not a bus id" in l]
            assert 1 <= len(lines) <= 2, lines  # once per child at most
            assert f"DEL {key}" in lines[0], lines[0]
            assert redis_command(redis.port, "GET", key) == b"$12", "the module overwrote the key"

            assert redis_command(redis.port, "DEL", key) == b":1"
            stage("key deleted")

            async def with_id():
                # Each child's hub reads the bus at least once a second.
                for _ in range(50):
                    buses = await welcome_buses(a.port, 4)
                    if len(buses) == 1 and HEX16.match(next(iter(buses)) or ""):
                        return
                    await asyncio.sleep(0.2)
                raise AssertionError(f"no bus id after the key was deleted: {buses}")

            run(with_id(), timeout=30)
        finally:
            redis.close()
