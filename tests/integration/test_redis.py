"""WSBridgeBus redis://: two Apache servers sharing one Redis are one chat
(rooms, one order, history, presence, the publish API on either), and a
Redis outage keeps clients connected, refuses events with "unavailable",
is logged, and after Redis is back messages flow again and a resume with
`since` gets exactly the missed events (docs/redis.md)."""
import asyncio
import signal
import time

from chatclient import ChatClient, check_total_order, close_all, publish, run, uniq
from harness import Apache
from redis_server import RedisServer
from run import time_limit

redis = None  # RedisServer, set by setup_module
servers = []


def setup_module():
    global redis
    # appendonly with fsync always, so even a kill -9 loses nothing (docs/redis.md)
    redis = RedisServer(persist=True).start()
    conf = f"WSBridgeBus {redis.url}\n"
    for _ in range(2):
        servers.append(Apache(extra_conf=conf, children=2, threads=10).start())


def teardown_module():
    for a in servers:
        a.stop()
    if redis:
        redis.close()


async def connect(server, **kw):
    return await ChatClient.connect(server.port, **kw)


def test_config_accepts_redis_url_and_refuses_a_bad_one():
    ok, out = Apache(extra_conf=f"WSBridgeBus {redis.url}/3\n").configtest()
    assert ok, out
    ok, out = Apache(extra_conf="WSBridgeBus mysql://x\n").configtest()
    assert not ok and "WSBridgeBus" in out, out


@time_limit(30)
def test_two_servers_are_one_chat():
    a, b = servers
    room = uniq("both")

    async def go():
        clients = []
        try:
            # three clients on each server, joined alternately
            for i in range(3):
                clients.append(await connect(a, name=f"a{i}"))
                clients.append(await connect(b, name=f"b{i}"))
            presences = []
            for c in clients:
                _, _, p = await c.join(room)
                presences.append(p)
            # the last joiner (on b) sees everybody, whichever server they use
            assert presences[-1]["members"] == ["a0", "b0", "a1", "b1", "a2", "b2"], presences[-1]
            for c in clients:
                await c.wait_events(room, lambda evs: sum(e.get("event") == "join" for e in evs) >= 1)
            for k in range(4):
                for c in clients:
                    await c.message(room, f"{c.you}-m{k}")
            st, body = publish(a.port, {"room": room, "text": "from the API on a"})
            assert st == 202, (st, body)
            st, body = publish(b.port, {"room": room, "text": "from the API on b"})
            assert st == 202, (st, body)
            for c in clients:
                await c.wait_events(room, lambda evs: len(c.texts(room)) >= 6 * 4 + 2, timeout=10)
            order = check_total_order(clients, room)
            assert sum(e["type"] == "message" for e in order) == 26
            seqs = [e["seq"] for e in clients[0].events[room]]
            assert seqs == sorted(set(seqs)), "seqs not strictly increasing"
            # same seq list on both servers from the first message on
            first_msg = next(e["seq"] for e in clients[-1].events[room] if e["type"] == "message")
            views = [[e["seq"] for e in c.events[room] if e["seq"] >= first_msg] for c in clients]
            assert all(v == views[0] for v in views), "clients on the two servers saw different orders"

            # a newcomer on either server: the room in its welcome (a child
            # that just started its hub may still be reading: bounded retry)
            for server in (a, b):
                deadline = time.time() + 3
                while True:
                    probe = await connect(server, name="probe")
                    await probe.close()
                    if {"room": room, "members": 6} in probe.welcome["rooms"] or time.time() > deadline:
                        break
                    await asyncio.sleep(0.05)
                assert {"room": room, "members": 6} in probe.welcome["rooms"], probe.welcome
            late_a = await connect(a, name="late-a")
            late_b = await connect(b, name="late-b")
            clients += [late_a, late_b]
            ha, _, _ = await late_a.join(room)
            hb, _, pb = await late_b.join(room)
            assert hb["messages"][:len(ha["messages"])] == ha["messages"]
            texts = [e.get("text") for e in ha["messages"] if e["type"] == "message"]
            assert texts.index("from the API on a") < texts.index("from the API on b"), texts
            assert pb["members"][-2:] == ["late-a", "late-b"], pb
        finally:
            await close_all(clients)
    run(go(), timeout=28)


@time_limit(60)
def test_redis_outage_keeps_clients_and_resume_is_exact():
    a, b = servers
    room = uniq("outage")

    async def go():
        clients = []
        try:
            x = await connect(a, name="xena")
            y = await connect(b, name="yuri")
            z = await connect(b, name="zed")
            clients += [x, y, z]
            await x.join(room)
            await y.join(room)
            await z.join(room)
            await x.message(room, "hello")
            await y.wait_events(room, lambda evs: "hello" in y.texts(room))
            since = y.events[room][-1]["seq"]
            await y.close()  # yuri comes back later with since
            await x.wait_events(room, lambda evs: evs[-1].get("event") == "leave")
            await x.message(room, "before the outage")
            await x.wait_events(room, lambda evs: "before the outage" in x.texts(room))

            redis.stop(signal.SIGKILL)
            await z.close()  # zed's leave cannot be published now; it must not be lost
            await x.message(room, "during the outage")
            err = await x.expect_error("unavailable", timeout=5)
            assert err.get("room") in (None, room), err
            assert a.wait_log("Redis bus unavailable", timeout=5), a.error_log()[-2000:]
            # still connected: the server answers another command
            await x.message(room, "still here?")
            await x.expect_error("unavailable", timeout=5)
            assert x.closed is None
            await asyncio.sleep(2)  # long enough for the reconnect backoff to grow

            redis.start()
            # links retry with a bounded backoff (5 s at most)
            deadline = asyncio.get_running_loop().time() + 12
            while True:
                await x.message(room, "after the outage")
                f = await x.next(lambda f: f.get("type") == "error" or
                                 (f.get("type") == "message" and f.get("text") == "after the outage"), 5)
                if f["type"] == "message":
                    break
                assert f["code"] == "unavailable", f
                assert asyncio.get_running_loop().time() < deadline, "messages did not flow again"
                await asyncio.sleep(0.3)
            for k in range(3):
                await x.message(room, f"after-{k}")
            await x.wait_events(room, lambda evs: "after-2" in x.texts(room))
            assert a.wait_log("Redis bus available", timeout=5)
            # zed's leave was held back and published once Redis returned
            await x.wait_events(room, lambda evs: any(e.get("event") == "leave" and e.get("name") == "zed"
                                                      for e in evs), timeout=10)
            assert b.wait_log("held back while the bus was unavailable", timeout=5)
            assert "during the outage" not in x.texts(room) and "still here?" not in x.texts(room)

            # yuri resumes on the other server: exactly what he missed
            y2 = await connect(b, name="yuri")
            clients.append(y2)
            h, j, p = await y2.join(room, since=since)
            missed = [e for e in x.events[room] if e["seq"] > since]
            assert h["complete"] is True, h
            assert h["messages"] == missed, "resume is not exactly the missed events:\n" \
                f"got  {[e['seq'] for e in h['messages']]}\nwant {[e['seq'] for e in missed]}"
            seqs = [e["seq"] for e in h["messages"]] + [j["seq"]]
            assert seqs == sorted(set(seqs)), f"duplicates or disorder: {seqs}"
            assert p["members"] == ["xena", "yuri"], p
            await x.message(room, "welcome back")
            await y2.wait_events(room, lambda evs: "welcome back" in y2.texts(room))
            check_total_order([x, y2], room)
        finally:
            if not redis.running:
                redis.start()
            await close_all(clients)
    run(go(), timeout=58)
    for s in servers:
        log = s.error_log()
        assert "Segmentation" not in log and "exit signal" not in log, log[-3000:]
