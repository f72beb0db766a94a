"""Pusher webhooks across two servers sharing a Redis bus: each server sends
its own webhooks to the same receiver, and still every occupancy and
membership transition arrives exactly once, whichever server the sockets
are on (the reporter rule in docs/pusher.md, owner keys with the server's
tag)."""
import json
import time

from harness import Apache, no_child_crash
from redis_server import RedisServer
from test_pusher_webhooks import APP_ID, APP_KEY, APP_SECRET, Client, Receiver

class Env:
    redis = None  # RedisServer
    servers = []
    receiver = None


def setup_module():
    Env.redis = RedisServer().start()
    Env.receiver = Receiver()
    for name in ("a", "b"):  # each server its own path: the receiver tells who sent what
        conf = f"""
WSBridgeBus {Env.redis.url}
WSBridgePusherApp {APP_ID} {APP_KEY} {APP_SECRET}
WSBridgePusherWebhook {APP_ID} http://127.0.0.1:{Env.receiver.port}/hooks/{name}
"""
        Env.servers.append(Apache(extra_conf=conf, children=2, threads=16).start())


def teardown_module():
    for a in Env.servers:
        a.stop()
    if Env.receiver:
        Env.receiver.stop()
    if Env.redis:
        Env.redis.close()


def for_channel(ch):
    return [e for e in Env.receiver.events() if e.get("channel") == ch]


def wait_for(pred, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"not in {timeout}s: {Env.receiver.events()}")


def test_transitions_once_across_two_servers():
    a, b = Env.servers
    ch = f"presence-x-{time.time_ns()}"
    ca1 = Client(port=a.port)
    cb1 = Client(port=b.port)
    cb2 = Client(port=b.port)
    ca2 = Client(port=a.port)
    try:
        ca1.subscribe(ch, "u1")
        cb1.subscribe(ch, "u1")
        cb2.subscribe(ch, "u2")
        ca2.subscribe(ch, "u2")
        wait_for(lambda: len(for_channel(ch)) >= 3)
        ca1.close()   # u1 stays on b
        cb2.close()   # u2 stays on a
        time.sleep(1.0)
        cb1.close()   # u1 gone (server b)
        wait_for(lambda: any(e["name"] == "member_removed" for e in for_channel(ch)))
        ca2.close()   # u2 gone, the channel empty (server a)
        wait_for(lambda: any(e["name"] == "channel_vacated" for e in for_channel(ch)))
        time.sleep(1.5)  # a duplicate from the other server would have come by now
        names = sorted(((e["name"], e.get("user_id") or "") for e in for_channel(ch)))
        assert names == sorted([("channel_occupied", ""), ("member_added", "u1"), ("member_added", "u2"),
                                ("member_removed", "u1"), ("member_removed", "u2"),
                                ("channel_vacated", "")]), names
        # Each by the server whose socket caused it.
        with Env.receiver.lock:
            posts = list(Env.receiver.posts)
        sender = {}
        for p in posts:
            for e in json.loads(p["body"])["events"]:
                if e.get("channel") == ch:
                    sender[(e["name"], e.get("user_id") or "")] = p["path"]
        assert sender == {("channel_occupied", ""): "/hooks/a", ("member_added", "u1"): "/hooks/a",
                          ("member_added", "u2"): "/hooks/b", ("member_removed", "u1"): "/hooks/b",
                          ("member_removed", "u2"): "/hooks/a", ("channel_vacated", ""): "/hooks/a"}, sender
    finally:
        for c in (ca1, ca2, cb1, cb2):
            c.close()


def test_no_child_crashed():
    for a in Env.servers:
        no_child_crash(a)
