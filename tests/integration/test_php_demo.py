"""The PHP demo of make run: the live poll behind /ws/php, whose WebSocket
backend is htdocs/php/poll-backend.php (php-fpm, GRIP channel "poll",
Set-Meta-Voted, a publish to /ws/publish), as conf/dev-locations.conf maps it.

The poll is kept in a file of this test's own (POLL_FILE, passed to php-fpm
through the environment), so other instances' votes do not count here."""
import asyncio
import json
import os
import tempfile

import websockets

from chatclient import http
from harness import BASE, Apache, no_child_crash
from run import time_limit


class Env:
    apache = None
    poll_file = None


def setup_module():
    os.makedirs(BASE, exist_ok=True)
    fd, Env.poll_file = tempfile.mkstemp(prefix="poll-", suffix=".json", dir=BASE)
    os.close(fd)
    os.chmod(Env.poll_file, 0o666)  # php-fpm's children run as www-data
    Env.apache = Apache(env={"PHP": "1", "POLL_FILE": Env.poll_file}).start()


def teardown_module():
    if Env.apache:
        Env.apache.stop()
    if Env.poll_file:
        os.unlink(Env.poll_file)


def url():
    return f"ws://127.0.0.1:{Env.apache.port}/ws/php"


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def connect():
    """A client and the poll it got on connecting."""
    ws = await websockets.connect(url())
    first = await recv_json(ws)
    assert first["type"] == "poll", first
    return ws, first


async def until(ws, pred, what, limit=20):
    """Reads messages until pred(msg); returns the ones read."""
    seen = []
    for _ in range(limit):
        seen.append(await recv_json(ws))
        if pred(seen[-1]):
            return seen
    raise AssertionError(f"no {what} in {seen}")


async def until_all(ws, types, limit=20):
    """Reads messages until one of each type in `types` was seen."""
    seen = []
    for _ in range(limit):
        seen.append(await recv_json(ws))
        if types <= {m["type"] for m in seen}:
            return seen
    raise AssertionError(f"not all of {types} in {seen}")


async def nothing_more(ws, who, wait=0.5):
    try:
        extra = await asyncio.wait_for(ws.recv(), wait)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"{who} got {extra!r}")


def test_page_and_poll_state():
    status, hdrs, body = http(Env.apache.port, "GET", "/php/")
    assert status == 200 and b"poll.js" in body, (status, body[:200])
    for asset, ctype in (("poll.js", "text/javascript"), ("poll.css", "text/css")):
        status, hdrs, _ = http(Env.apache.port, "GET", f"/php/{asset}")
        assert status == 200 and hdrs.get("content-type", "").startswith(ctype), (asset, status, hdrs)

    async def go():
        ws, first = await connect()
        await ws.close()
        return first
    first = run(go())
    ids = [o["id"] for o in first["options"]]
    assert first["question"] and len(ids) >= 2 and all(o["label"] for o in first["options"]), first
    assert set(first["votes"]) == set(ids) and first["total"] == sum(first["votes"].values()), first
    assert isinstance(first["version"], int), first


def test_a_vote_reaches_every_page():
    async def go():
        a, pa = await connect()
        b, pb = await connect()
        try:
            option = pa["options"][1]["id"]
            await a.send(json.dumps({"type": "vote", "option": option}))
            want = pa["version"] + 1
            # the voter: its confirmation and the new tally, in either order
            got = await until_all(a, {"voted", "tally"})
            assert {"type": "voted", "option": option} in got, got
            tally = next(m for m in got if m["type"] == "tally")
            # the other page: the same tally, published to channel "poll"
            other = (await until(b, lambda m: m["type"] == "tally", "tally for the other page"))[-1]
            assert other == tally, (other, tally)
            assert tally["votes"][option] == pb["votes"][option] + 1, (pb, tally)
            assert tally["total"] == pb["total"] + 1 and tally["version"] == want, (pb, tally)
        finally:
            await a.close()
            await b.close()
    run(go())


def test_one_vote_per_connection():
    async def go():
        a, pa = await connect()
        b, _ = await connect()
        try:
            ids = [o["id"] for o in pa["options"]]
            # Two votes at once: they may reach the backend in one request,
            # before any Meta-Voted came back: still only the first counts.
            await a.send(json.dumps({"type": "vote", "option": ids[0]}))
            await a.send(json.dumps({"type": "vote", "option": ids[1]}))
            got = await until_all(a, {"voted", "error", "tally"})
            assert [m for m in got if m["type"] == "voted"] == [{"type": "voted", "option": ids[0]}], got
            assert [m["code"] for m in got if m["type"] == "error"] == ["already-voted"], got
            # A later vote, in a request of its own that carries Meta-Voted.
            await a.send(json.dumps({"type": "vote", "option": ids[2]}))
            err = (await until(a, lambda m: m["type"] == "error", "refusal of the third vote"))[-1]
            assert err["code"] == "already-voted", err
            # B saw exactly one new tally: one vote counted.
            tally = (await until(b, lambda m: m["type"] == "tally", "tally"))[-1]
            assert tally["version"] == pa["version"] + 1 and tally["total"] == pa["total"] + 1, (pa, tally)
            assert tally["votes"][ids[0]] == pa["votes"][ids[0]] + 1, (pa, tally)
            await nothing_more(b, "B (a second tally)")
        finally:
            await a.close()
            await b.close()
        # A new connection may vote again: the limit is per connection.
        c, pc = await connect()
        try:
            assert pc["total"] == pa["total"] + 1, (pa, pc)
            await c.send(json.dumps({"type": "vote", "option": ids[1]}))
            await until(c, lambda m: m["type"] == "voted", "confirmation")
        finally:
            await c.close()
    run(go())


def test_bad_messages_get_an_error_only_to_their_sender():
    async def go():
        a, _ = await connect()
        b, pb = await connect()
        try:
            for bad, code in (("not json", "bad-message"),
                              (json.dumps([1, 2]), "bad-message"),
                              (json.dumps({"type": "nope"}), "bad-message"),
                              (json.dumps({"type": "vote"}), "unknown-option"),
                              (json.dumps({"type": "vote", "option": 7}), "unknown-option"),
                              (json.dumps({"type": "vote", "option": "no-such-option"}), "unknown-option"),
                              (b"\x00\x01", "bad-message")):
                await b.send(bad)
                err = await recv_json(b)
                assert err["type"] == "error" and err["code"] == code and err["message"], (bad, err)
            await nothing_more(a, "A (someone else's error)")
            # and B may still vote: a refused message is not a vote
            await b.send(json.dumps({"type": "vote", "option": pb["options"][0]["id"]}))
            await until(b, lambda m: m["type"] == "voted", "confirmation")
        finally:
            await a.close()
            await b.close()
    run(go())


@time_limit(60)
def test_concurrent_votes_are_all_counted():
    n = 12

    async def go():
        clients = [await connect() for _ in range(n)]
        before = clients[0][1]
        option = before["options"][-1]["id"]
        try:
            await asyncio.gather(*(ws.send(json.dumps({"type": "vote", "option": option})) for ws, _ in clients))
            want = before["version"] + n
            for ws, _ in clients:
                last = (await until(ws, lambda m: m["type"] == "tally" and m["version"] == want,
                                    f"tally version {want}", limit=3 * n))[-1]
            assert last["votes"][option] == before["votes"][option] + n, (before, last)
            assert last["total"] == before["total"] + n, (before, last)
        finally:
            await asyncio.gather(*(ws.close() for ws, _ in clients))
    run(go(), timeout=50)
    with open(Env.poll_file) as f:
        saved = json.load(f)
    assert sum(saved["votes"].values()) == saved["version"], saved  # every vote counted once


def test_direct_requests_to_the_backend_are_403():
    for method, body, headers in (
            ("POST", "OPEN\r\n", {"Content-Type": "application/websocket-events"}),
            # a header is HTTP_WSBRIDGE in PHP, not WSBRIDGE
            ("POST", "OPEN\r\n", {"Content-Type": "application/websocket-events", "WSBRIDGE": "1"}),
            ("GET", None, {})):
        status, _, resp = http(Env.apache.port, method, "/php/poll-backend.php", body, headers)
        assert status == 403, (method, headers, status, resp)
        assert b"OPEN" not in resp and b"<?php" not in resp, resp
        # refused by Apache (conf/dev-locations.conf: Require env WSBRIDGE),
        # before PHP runs: Apache's own 403 page
        assert b"Forbidden" in resp and b"You don't have permission" in resp, resp
    no_child_crash(Env.apache)
