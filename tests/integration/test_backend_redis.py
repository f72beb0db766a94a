"""WSBridgeApp backend on two servers sharing one Redis bus (WSBridgeBus
redis://), four children each: a GRIP publish to either server reaches every
backend subscriber on both, and every subscriber of a channel sees that
channel's messages in one order, also when two publishers post to the two
servers at the same time.

The backend is tests/backend/echo_backend.php under each server's own
php-fpm pool ("sub:<channel>" subscribes the connection)."""
import asyncio
import json
import threading

import websockets

from backend_support import echo_backend_conf
from chatclient import http, status_json
from harness import Apache, no_child_crash
from redis_server import RedisServer
from run import time_limit

CHILDREN = 4
PER_SERVER = 24  # subscribers on each server

CONF = echo_backend_conf()


class Env:
    redis = None  # RedisServer
    servers = []


def setup_module():
    Env.redis = RedisServer(prefix="wsb-backend-redis-").start()
    conf = CONF + f"WSBridgeBus {Env.redis.url}\n"
    for _ in range(2):
        Env.servers.append(Apache(extra_conf=conf, children=CHILDREN, threads=16,
                                  env={"PHP": "1", "PHP_CHILDREN": "8"}).start())


def teardown_module():
    for a in Env.servers:
        a.stop()
    Env.servers = []
    if Env.redis:
        Env.redis.close()


def publish(server, body):
    status, _, resp = http(server.port, "POST", "/ws/publish", json.dumps(body),
                           {"Content-Type": "application/json"}, timeout=10)
    assert (status, resp) == (200, b"Published\n"), (status, resp)


def item(channel, text):
    return {"channel": channel, "formats": {"ws-message": {"content": text}}}


async def connect(server, i):
    url = f"ws://127.0.0.1:{server.port}/ws/tb?i={i}"
    for _ in range(50):
        try:
            return await websockets.connect(url, open_timeout=20)
        except websockets.InvalidStatusCode as e:
            if e.status_code != 503:  # a child's worker reserve: come back
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("still 503 after 50 tries")


async def subscribe(ws, *channels):
    for ch in channels:
        await ws.send(f"sub:{ch}")
    # the subscription is applied when the backend's answer is: a round trip shows it
    await ws.send("sync")
    assert await asyncio.wait_for(ws.recv(), 20) == "sync"


async def read_n(ws, n, timeout=20):
    return [await asyncio.wait_for(ws.recv(), timeout) for _ in range(n)]


def children_with_backends(server):
    return {c["pid"] for c in status_json(server.port)["children"] if c.get("backend", {}).get("accepted")}


@time_limit(90)
def test_a_publish_to_one_server_reaches_subscribers_on_both_in_one_order():
    a, b = Env.servers

    async def go():
        conns = []
        try:
            for i in range(PER_SERVER):
                conns.append(await connect(a, f"a{i}"))
                conns.append(await connect(b, f"b{i}"))
            # every connection on "feed"; every other one on "side" too
            await asyncio.gather(*(subscribe(ws, "feed", *(["side"] if k % 2 else []))
                                   for k, ws in enumerate(conns)))
            # one publish to a: everybody on both servers
            publish(a, {"items": [item("feed", "hello from a")]})
            for ws in conns:
                assert await asyncio.wait_for(ws.recv(), 20) == "hello from a"

            # 50 items in one body to a, alternating channels
            publish(a, {"items": [item("feed" if i % 2 == 0 else "side", f"one-{i}") for i in range(50)]})
            feed = [f"one-{i}" for i in range(0, 50, 2)]
            for k, ws in enumerate(conns):
                got = await read_n(ws, 50 if k % 2 else 25)
                want = [f"one-{i}" for i in range(50)] if k % 2 else feed
                assert got == want, f"connection {k}: {got}"

            # two publishers at once, one per server, 25 posts each in a row
            def post_all(server, who):
                for i in range(25):
                    ch = "feed" if i % 5 else "side"
                    publish(server, {"items": [item(ch, f"{who}-{i}")]})
            threads = [threading.Thread(target=post_all, args=(s, w)) for s, w in ((a, "A"), (b, "B"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert not any(t.is_alive() for t in threads), "a publisher did not finish"
            n_side = 2 * len([i for i in range(25) if i % 5 == 0])
            views = []
            for k, ws in enumerate(conns):
                views.append(await read_n(ws, 50 if k % 2 else 50 - n_side))
            feed_views = [[m for m in v if int(m.split("-")[1]) % 5] for v in views]
            side_views = [[m for m in v if int(m.split("-")[1]) % 5 == 0] for v in views[1::2]]
            assert all(v == feed_views[0] for v in feed_views), \
                "subscribers saw channel feed in different orders:\n" + "\n".join(map(str, feed_views[:4]))
            assert all(v == side_views[0] for v in side_views), \
                "subscribers saw channel side in different orders:\n" + "\n".join(map(str, side_views[:4]))
            # each publisher's own posts keep their order
            for who in ("A", "B"):
                mine = [int(m.split("-")[1]) for m in views[1] if m.startswith(who + "-")]
                assert mine == list(range(25)), (who, mine)
            for ws in conns:  # nothing more, nothing twice
                try:
                    extra = await asyncio.wait_for(ws.recv(), 0.05)
                    raise AssertionError(f"an extra message: {extra!r}")
                except asyncio.TimeoutError:
                    pass
        finally:
            await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)

    asyncio.run(asyncio.wait_for(go(), 80))
    spread = [children_with_backends(s) for s in Env.servers]
    print("  children holding backend connections:", [len(p) for p in spread])
    assert all(len(p) >= 2 for p in spread), f"the subscribers should sit in several children of each server: {spread}"
    for s in Env.servers:
        no_child_crash(s)
