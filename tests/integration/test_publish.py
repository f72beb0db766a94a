"""The publish API (SetHandler wsbridge-publish): POST {"room","text","from"?}
-> 202 {"seq":N}, delivered to the room's members with that seq; every
invalid request gets its documented status and error code; with
WSBridgeSecret the caller needs a Bearer token."""
import asyncio
import json
import time

from chatclient import ChatClient, http, make_token, publish, run, uniq
from harness import shared_apache

SECRET = "publish-secret-0123456789"

EXTRA = f"""
<Location /ws/publish-auth>
  SetHandler wsbridge-publish
  Require ip 127.0.0.1
  WSBridgeSecret {SECRET}
</Location>
<Location /ws/publish-short>
  SetHandler wsbridge-publish
  WSBridgeMaxTextLength 10
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, children=2)


def test_publish_reaches_joined_clients_with_its_seq():
    room = uniq("pub")

    async def go():
        a = await ChatClient.connect(apache.port, name="reader-a")
        b = await ChatClient.connect(apache.port, name="reader-b")
        try:
            await a.join(room)
            await b.join(room)
            await a.wait_events(room, lambda evs: len(evs) == 2)
            status, body = publish(apache.port, {"room": room, "text": "Deploy finished"})
            assert status == 202, (status, body)
            assert set(body) == {"seq"} and isinstance(body["seq"], int) and body["seq"] > 0, body
            seq1 = body["seq"]
            status, body = publish(apache.port, {"room": room, "text": "Order shipped",
                                                 "from": "Build Bot"})
            assert status == 202, (status, body)
            seq2 = body["seq"]
            assert seq2 > seq1
            for c in (a, b):
                await c.wait_events(room, lambda evs: len(c.texts(room)) == 2)
                m1, m2 = [e for e in c.events[room] if e["type"] == "message"]
                assert (m1["seq"], m1["from"], m1["text"]) == (seq1, "server", "Deploy finished"), m1
                assert (m2["seq"], m2["from"], m2["text"]) == (seq2, "Build Bot", "Order shipped"), m2
                assert isinstance(m1["ts"], int) and abs(m1["ts"] / 1000 - time.time()) < 60, m1
                assert m1["room"] == room
            assert a.events[room][1:] == b.events[room]  # a also saw b join
        finally:
            await a.close()
            await b.close()
    run(go(), timeout=15)


def test_publish_into_an_empty_room_waits_in_the_history():
    room = uniq("pub-empty")
    seqs = []
    for k in range(3):
        status, body = publish(apache.port, {"room": room, "text": f"news {k}", "from": "ci"})
        assert status == 202, (status, body)
        seqs.append(body["seq"])

    async def go():
        c = await ChatClient.connect(apache.port, name="visitor")
        try:
            h, j, _ = await c.join(room)
            assert h["complete"] is True, h
            assert [(e["seq"], e["from"], e["text"]) for e in h["messages"]] == \
                [(s, "ci", f"news {k}") for k, s in enumerate(seqs)], h["messages"]
            assert j["seq"] > seqs[-1]
            # unicode text and from survive the trip
            status, body = publish(apache.port, {"room": room, "text": "Grüße 😀", "from": "Zoë"})
            assert status == 202, body
            m = await c.next(lambda f: f.get("type") == "message")
            assert (m["text"], m["from"], m["seq"]) == ("Grüße 😀", "Zoë", body["seq"]), m
        finally:
            await c.close()
    run(go(), timeout=10)


def test_invalid_requests():
    room = uniq("pub-bad")
    cases = [
        ("not json", 400, "bad-json"),
        ("[1]", 400, "bad-json"),
        ("", 400, "bad-json"),
        ('{"room": "r", "text": ', 400, "bad-json"),
        (json.dumps({"text": "x"}), 400, "missing-field"),
        (json.dumps({"room": room}), 400, "missing-field"),
        (json.dumps({"room": 5, "text": "x"}), 400, "bad-field"),
        (json.dumps({"room": room, "text": 5}), 400, "bad-field"),
        (json.dumps({"room": room, "text": ""}), 400, "bad-field"),
        (json.dumps({"room": room, "text": "x", "from": 5}), 400, "bad-field"),
        (json.dumps({"room": "bad room", "text": "x"}), 400, "bad-room"),
        (json.dumps({"room": "", "text": "x"}), 400, "bad-room"),
        (json.dumps({"room": "r" * 65, "text": "x"}), 400, "bad-room"),
        (json.dumps({"room": room, "text": "x", "from": "a#b"}), 400, "bad-name"),
        (json.dumps({"room": room, "text": "x", "from": "x" * 33}), 400, "bad-name"),
        (json.dumps({"room": room, "text": "x" * 4097}), 413, "too-long"),
        (json.dumps({"room": room, "text": "é" * 2049}), 413, "too-long"),
    ]
    for body, want_status, want_code in cases:
        status, hdrs, resp = http(apache.port, "POST", "/ws/publish", body,
                                  {"Content-Type": "application/json"})
        assert status == want_status, f"{body[:50]!r}: {status} {resp[:200]!r}, want {want_status}"
        assert hdrs.get("content-type", "").startswith("application/json"), (body[:40], hdrs)
        err = json.loads(resp)
        assert err.get("error") == want_code and isinstance(err.get("reason"), str), (body[:50], err)
    # the limit itself is fine, and per location
    assert publish(apache.port, {"room": room, "text": "x" * 4096})[0] == 202
    assert publish(apache.port, {"room": room, "text": "0123456789"}, path="/ws/publish-short")[0] == 202
    status, body = publish(apache.port, {"room": room, "text": "0123456789a"}, path="/ws/publish-short")
    assert status == 413 and body["error"] == "too-long", (status, body)
    # none of the refused ones reached the room
    async def go():
        c = await ChatClient.connect(apache.port, name="checker")
        try:
            h, _, _ = await c.join(room)
            assert [e["text"] for e in h["messages"]] == ["x" * 4096, "0123456789"], \
                [e["text"][:20] for e in h["messages"]]
        finally:
            await c.close()
    run(go(), timeout=10)


def test_huge_text_gets_the_json_413_too():
    # docs/chat-protocol.md: publish responses are always JSON, 413 is
    # {"error": "too-long"} for any text over WSBridgeMaxTextLength, however long.
    room = uniq("pub-huge")
    for n in (20000, 100000):
        body = json.dumps({"room": room, "text": "x" * n})
        status, hdrs, resp = http(apache.port, "POST", "/ws/publish", body,
                                  {"Content-Type": "application/json"})
        assert status == 413, (n, status)
        assert hdrs.get("content-type", "").startswith("application/json"), \
            f"{n}-byte text: 413 as {hdrs.get('content-type')!r}, not JSON: {resp[:80]!r}"
        assert json.loads(resp).get("error") == "too-long", resp[:200]


def test_other_methods_get_405():
    for method in ("GET", "PUT", "DELETE", "HEAD"):
        status, _, resp = http(apache.port, method, "/ws/publish")
        assert status == 405, f"{method}: {status} {resp[:100]!r}"


def test_405_says_allow_post():
    # RFC 9110 15.5.6: a 405 MUST carry Allow with the methods the resource
    # supports; here that is POST.
    for method in ("GET", "PUT"):
        status, hdrs, _ = http(apache.port, method, "/ws/publish")
        assert status == 405, status
        allow = [m.strip() for m in hdrs.get("allow", "").split(",")]
        assert "POST" in allow, f"{method} /ws/publish: 405 with Allow: {hdrs.get('allow')!r}, want POST"


def test_publish_with_secret_needs_a_bearer_token():
    room = uniq("pub-auth")
    body = {"room": room, "text": "authorized"}
    now = int(time.time())
    refused = {
        "no header": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "empty bearer": {"Authorization": "Bearer "},
        "bad signature": {"Authorization": "Bearer " + make_token("another-secret-01234", "backend")},
        "expired": {"Authorization": "Bearer " + make_token(SECRET, "backend", now - 10)},
        "malformed": {"Authorization": "Bearer backend|123"},
    }
    for what, headers in refused.items():
        status, resp = publish(apache.port, body, path="/ws/publish-auth", headers=headers)
        assert status == 401, f"{what}: {status} {resp}"
    status, hdrs, _ = http(apache.port, "POST", "/ws/publish-auth", json.dumps(body),
                           {"Content-Type": "application/json"})
    assert status == 401 and "bearer" in hdrs.get("www-authenticate", "").lower(), (status, hdrs)
    status, resp = publish(apache.port, body, path="/ws/publish-auth",
                           headers={"Authorization": "Bearer " + make_token(SECRET, "backend")})
    assert status == 202 and isinstance(resp.get("seq"), int), (status, resp)
    seq = resp["seq"]
    # bearer is case-insensitive as an auth scheme
    status, resp = publish(apache.port, {"room": room, "text": "second"}, path="/ws/publish-auth",
                           headers={"Authorization": "bearer " + make_token(SECRET, "backend")})
    assert status == 202, (status, resp)
    # the unauthenticated location still needs nothing
    assert publish(apache.port, {"room": room, "text": "open"})[0] == 202

    async def go():
        c = await ChatClient.connect(apache.port, name="auth-check")
        try:
            h, _, _ = await c.join(room)
            assert [e["text"] for e in h["messages"]] == ["authorized", "second", "open"], h
            assert h["messages"][0]["seq"] == seq
        finally:
            await c.close()
    run(go(), timeout=10)


def test_concurrent_publishes_get_distinct_increasing_seqs():
    room = uniq("pub-many")

    async def go():
        c = await ChatClient.connect(apache.port, name="counter")
        try:
            await c.join(room)
            loop = asyncio.get_running_loop()
            results = await asyncio.gather(*(
                loop.run_in_executor(None, publish, apache.port, {"room": room, "text": f"p{k}"})
                for k in range(30)))
            assert all(st == 202 for st, _ in results), results
            seqs = [b["seq"] for _, b in results]
            assert len(set(seqs)) == 30, seqs
            await c.wait_events(room, lambda evs: len(c.texts(room)) == 30)
            got = [e for e in c.events[room] if e["type"] == "message"]
            assert [e["seq"] for e in got] == sorted(seqs), "not delivered in seq order"
            by_seq = {b["seq"]: f"p{k}" for k, (_, b) in enumerate(results)}
            assert all(by_seq[e["seq"]] == e["text"] for e in got), "a seq answered for another text"
        finally:
            await c.close()
    run(go(), timeout=15)
