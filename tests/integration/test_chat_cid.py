"""Client message ids (cid), exactly-once, with a real Apache of several
children: a message sent twice with one cid is one event and its sender gets
the original back (same seq, ts, cid); a resend from a new connection in
another child after a reconnect gets the original and nobody sees it twice;
duplicates racing from two children end as exactly one message; directs and
the publish API's Idempotency-Key follow the same rule; bad cids are refused
with bad-cid; the same across two servers on one Redis bus."""
import asyncio
import json
import threading

from chatclient import (FAST_CHAT, ChatClient, close_all, http, make_token, publish, run, stage,
                        token_chat, uniq)
from harness import Apache, no_child_crash, shared_apache
from redis_server import RedisServer
from run import time_limit

SECRET = "cid-secret-0123456789"
EXTRA = "WSBridgeReserveWorkers 0\n" + FAST_CHAT + token_chat(SECRET)

apache = None  # set by setup_module
# 4 threads per child: a few open connections fill a child, so the next one
# is served by another (connect_elsewhere).
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, children=3, threads=4)


async def connect(name=None, path="/ws/fast", **kw):
    return await ChatClient.connect(apache.port, path=path, name=name, **kw)


async def connect_elsewhere(not_pids, name=None, path="/ws/fast", **kw):
    """A connection served by a child whose pid is not in not_pids. The
    connections that land in those children stay open meanwhile (they hold
    its threads, so the next accept happens elsewhere) and are closed after."""
    fillers = []
    try:
        for _ in range(16):
            c = await connect(name=name, path=path, **kw)
            if c.pid not in not_pids:
                return c
            fillers.append(c)
        raise AssertionError(f"16 connections, all in children {set(not_pids)}")
    finally:
        await close_all(fillers)


def messages(c, room, cid=None):
    return [e for e in c.events.get(room, []) if e["type"] == "message" and (cid is None or e.get("cid") == cid)]


async def fence(sender, readers, room, text):
    """sender says text; returns once every reader got it. Everything on the
    bus before it has then reached them too (one order for everybody)."""
    await sender.message(room, text)
    for r in readers:
        await r.wait_events(room, lambda evs: any(e.get("text") == text for e in evs), timeout=10)


def test_same_cid_twice_is_one_event_and_the_sender_gets_the_original():
    room = uniq("cid")

    async def go():
        a = await connect("alice")
        b = await connect("bob")
        try:
            await a.join(room)
            await b.join(room)
            for _ in range(2):
                await a.send({"type": "message", "room": room, "text": "hello once", "cid": "m-1"})
            await a.wait_events(room, lambda evs: len(messages(a, room, "m-1")) == 2, timeout=10)
            first, again = messages(a, room, "m-1")
            assert first == again, f"the answer is not the original: {first} vs {again}"
            assert isinstance(first["seq"], int) and first["text"] == "hello once", first
            await fence(a, [a, b], room, "fence-1")
            got = messages(b, room, "m-1")
            assert len(got) == 1 and got[0] == first, f"bob saw {got}"
            assert [e["text"] for e in messages(b, room)] == ["hello once", "fence-1"]
            # A joiner's history holds the message once, with its cid.
            c = await connect("carol")
            try:
                h, _, _ = await c.join(room)
                hist = [m for m in h["messages"] if m["type"] == "message"]
                assert [m.get("cid") for m in hist] == ["m-1", None], hist
                assert hist[0] == first
            finally:
                await c.close()
        finally:
            await close_all([a, b])
    run(go())


@time_limit(40)
def test_resend_after_reconnect_in_another_child_gets_the_original():
    room = uniq("cid")

    async def go():
        a = await connect("alice")
        b = await connect("bob")
        a2 = None
        try:
            await a.join(room)
            await b.join(room)
            await a.send({"type": "message", "room": room, "text": "in flight", "cid": "r-1"})
            await a.wait_events(room, lambda evs: len(messages(a, room, "r-1")) == 1, timeout=10)
            original = messages(a, room, "r-1")[0]
            before = original["seq"] - 1
            await a.close()
            stage("reconnecting in another child")
            a2 = await connect_elsewhere({a.pid}, name="alice")
            assert a2.pid != a.pid
            h, _, _ = await a2.join(room, since=before)
            assert [m for m in h["messages"] if m.get("cid") == "r-1"] == [original], h
            # The page resends what it has not seen acknowledged: the original comes back.
            await a2.send({"type": "message", "room": room, "text": "in flight", "cid": "r-1"})
            f = await a2.next(lambda f: f.get("type") == "message" and f.get("cid") == "r-1", timeout=10)
            assert f == original, f"{f} != {original}"
            await fence(a2, [a2, b], room, "fence-2")
            assert messages(b, room, "r-1") == [original]
            assert messages(a2, room, "r-1") == [original], "the resend was published again"
        finally:
            await close_all([c for c in (a, b, a2) if c])
    run(go(), timeout=35)


@time_limit(60)
def test_concurrent_duplicates_from_two_children_are_exactly_one():
    room = uniq("race")

    async def go():
        x = await connect("dora")
        y = await connect_elsewhere({x.pid}, name="dora")
        obs = await connect_elsewhere({x.pid, y.pid}, name="obs")
        try:
            for c in (x, y, obs):
                await c.join(room)
            rounds = 20
            for k in range(rounds):
                cid = f"race-{k}"
                await asyncio.gather(
                    x.send({"type": "message", "room": room, "text": f"from x {k}", "cid": cid}),
                    y.send({"type": "message", "room": room, "text": f"from y {k}", "cid": cid}))
            for c in (x, y):
                # Each sender gets its own message's answer: the live event
                # and, for the loser, the original once more.
                await c.wait_events(room, lambda evs: len({e.get("cid") for e in evs if e.get("cid")}) == rounds,
                                    timeout=15)
            await fence(x, [x, y, obs], room, "fence-3")
            won = {"x": 0, "y": 0}
            for k in range(rounds):
                cid = f"race-{k}"
                seen = messages(obs, room, cid)
                assert len(seen) == 1, f"{cid}: the observer saw {seen}"
                for c in (x, y):
                    mine = messages(c, room, cid)
                    assert mine and all(e == seen[0] for e in mine), f"{cid}: {mine} vs {seen}"
                    assert len(mine) <= 2, mine
                won[seen[0]["text"].split()[1]] += 1
            stage(f"winners: {won}")
            total = [e for e in messages(obs, room) if e.get("cid")]
            assert len(total) == rounds
        finally:
            await close_all([x, y, obs])
        assert len({x.pid, y.pid, obs.pid}) == 3
    run(go(), timeout=55)


def test_bad_cid_is_refused():
    room = uniq("bad")

    async def go():
        a = await connect("erin")
        try:
            await a.join(room)
            for cid in ("", "x" * 65, "has space", "é", 7, None, ["a"]):
                await a.send({"type": "message", "room": room, "text": "x", "cid": cid})
                err = await a.expect_error("bad-cid")
                assert err["reason"], err
                await a.send({"type": "direct", "to": "erin", "text": "x", "cid": cid})
                await a.expect_error("bad-cid")
            await a.send({"type": "message", "room": room, "text": "ok", "cid": "x" * 64})
            await a.wait_events(room, lambda evs: len(messages(a, room)) == 1)
            assert messages(a, room)[0]["cid"] == "x" * 64
        finally:
            await a.close()
    run(go())


def test_direct_with_a_cid_reaches_the_recipient_once():
    async def go():
        s = await connect("sam")
        r = await connect_elsewhere({s.pid}, name="rita")
        s2 = None
        try:
            dm_room = uniq("dm")
            await r.join(dm_room)  # online everywhere
            await s.join(dm_room)  # after rita's join in bus order: s's child knows her
            await s.send({"type": "direct", "to": "rita", "text": "psst", "cid": "d-1"})
            original = await r.next(lambda f: f.get("type") == "direct", timeout=10)
            assert original["cid"] == "d-1" and original["from"] == "sam", original
            mine = await s.next(lambda f: f.get("type") == "direct", timeout=10)
            assert mine == original
            await s.close()
            s2 = await connect_elsewhere({s.pid}, name="sam")
            await s2.send({"type": "direct", "to": "rita", "text": "psst", "cid": "d-1"})
            back = await s2.next(lambda f: f.get("type") == "direct", timeout=10)
            assert back == original, f"{back} != {original}"
            await s2.send({"type": "direct", "to": "rita", "text": "after", "cid": "d-2"})
            nxt = await r.next(lambda f: f.get("type") == "direct", timeout=10)
            assert nxt["cid"] == "d-2", f"rita got the resend again: {nxt}"
        finally:
            await close_all([c for c in (s, r, s2) if c])
    run(go(), timeout=25)


def test_token_user_is_the_identity_across_connections():
    room = uniq("tok")
    token = make_token(SECRET, "tara")

    async def go():
        a = await connect(path="/ws/tok", token=token)
        b = await connect_elsewhere({a.pid}, path="/ws/tok", token=token)
        o = await connect(path="/ws/tok", token=make_token(SECRET, "otto"))
        try:
            for c in (a, b, o):
                await c.join(room)
            await a.send({"type": "message", "room": room, "text": "once", "cid": "t-1"})
            await a.wait_events(room, lambda evs: len(messages(a, room, "t-1")) == 1, timeout=10)
            await b.send({"type": "message", "room": room, "text": "once", "cid": "t-1"})
            await b.wait_events(room, lambda evs: len(messages(b, room, "t-1")) == 2, timeout=10)
            await o.send({"type": "message", "room": room, "text": "other user", "cid": "t-1"})
            await fence(o, [a, b, o], room, "fence-4")
            assert len(messages(o, room, "t-1")) == 2, "another user's cid is another message"
            assert [e["text"] for e in messages(o, room, "t-1")] == ["once", "other user"]
        finally:
            await close_all([a, b, o])
    run(go(), timeout=25)


def test_publish_idempotency_key():
    room = uniq("idem")

    async def go():
        m = await connect("mia")
        try:
            await m.join(room)
            hdr = {"Idempotency-Key": "deploy-77"}
            status, body = publish(apache.port, {"room": room, "text": "deployed"}, headers=hdr)
            assert status == 202 and set(body) == {"seq"}, (status, body)
            seq = body["seq"]
            s2, h2, raw = http(apache.port, "POST", "/ws/publish", json.dumps({"room": room, "text": "deployed"}),
                               {"Content-Type": "application/json", **hdr})
            assert s2 == 202, (s2, raw)
            assert json.loads(raw) == {"seq": seq, "replay": True}, raw
            assert h2.get("idempotency-replayed") == "true", h2
            # Concurrent publishes of one key (several children answer): one message.
            results = []

            def post():
                results.append(publish(apache.port, {"room": room, "text": "burst"},
                                       headers={"Idempotency-Key": "burst-1"}))
            threads = [threading.Thread(target=post) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(15)
            assert len(results) == 6 and all(s == 202 for s, _ in results), results
            assert len({b["seq"] for _, b in results}) == 1, results
            assert sum(1 for _, b in results if not b.get("replay")) == 1, results
            status, body = publish(apache.port, {"room": room, "text": "x"}, headers={"Idempotency-Key": "a b"})
            assert status == 400 and body["error"] == "bad-cid", (status, body)
            await fence_publish(m, room)
            got = messages(m, room)
            assert [(e["text"], e.get("cid")) for e in got] == [
                ("deployed", "deploy-77"), ("burst", "burst-1"), ("fence", None)], got
            assert got[0]["seq"] == seq
        finally:
            await m.close()
    run(go(), timeout=30)


async def fence_publish(m, room):
    status, _ = publish(apache.port, {"room": room, "text": "fence"})
    assert status == 202
    await m.wait_events(room, lambda evs: any(e.get("text") == "fence" for e in evs), timeout=10)


def test_no_child_crashed():
    no_child_crash(apache)


# --- two servers on one Redis bus ---------------------------------------------------


@time_limit(60)
def test_two_servers_on_redis_dedupe_alike():
    redis = RedisServer(prefix="wsb-cid-redis-")
    servers = []
    try:
        redis.start()
        conf = f"WSBridgeBus {redis.url}\n"
        servers = [Apache(extra_conf=conf, children=2, threads=10).start() for _ in range(2)]
        room = uniq("redis")

        async def go():
            a = await ChatClient.connect(servers[0].port, name="rex")
            b = await ChatClient.connect(servers[1].port, name="rex")
            o = await ChatClient.connect(servers[1].port, name="obs")
            try:
                for c in (a, b, o):
                    await c.join(room)
                for k in range(10):
                    cid = f"rr-{k}"
                    await asyncio.gather(
                        a.send({"type": "message", "room": room, "text": f"a {k}", "cid": cid}),
                        b.send({"type": "message", "room": room, "text": f"b {k}", "cid": cid}))
                for c in (a, b):  # their own sends are on the bus before the fence
                    await c.wait_events(room, lambda evs: len({e.get("cid") for e in evs if e.get("cid")}) == 10,
                                        timeout=15)
                await o.send({"type": "message", "room": room, "text": "fence"})
                for c in (a, b, o):
                    await c.wait_events(room, lambda evs: any(e.get("text") == "fence" for e in evs), timeout=15)
                for k in range(10):
                    seen = messages(o, room, f"rr-{k}")
                    assert len(seen) == 1, seen
                    for c in (a, b):
                        assert messages(c, room, f"rr-{k}")[0] == seen[0]
                # The publish API on the other server knows a key published on the first.
                s1, body1 = publish(servers[0].port, {"room": room, "text": "p"}, headers={"Idempotency-Key": "rk"})
                s2, body2 = publish(servers[1].port, {"room": room, "text": "p"}, headers={"Idempotency-Key": "rk"})
                assert s1 == s2 == 202 and body2 == {"seq": body1["seq"], "replay": True}, (body1, body2)
            finally:
                await close_all([a, b, o])
        run(go(), timeout=40)
    finally:
        for s in servers:
            s.stop()
        redis.close()
