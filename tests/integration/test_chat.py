"""The chat hub through a real Apache (docs/chat-protocol.md): one total
order per room for many concurrent clients, history and resume with
`since`, presence, name rules and clashes, text length, the rate limit,
direct messages, malformed input, access tokens."""
import asyncio
import time

from chatclient import (FAST_CHAT, ChatClient, chat_location, check_strictly_increasing,
                        check_total_order, close_all, is_event, last_is, make_token, n_messages,
                        publish, run, token_chat, uniq)
from harness import Apache, no_child_crash, shared_apache
from run import time_limit
from wsclient import handshake_request, read_http_response

SECRET = "0123456789abcdef-chat-test-secret"

# All chat locations share the same rooms; /ws/fast lifts the rate limit for
# tests that send quickly, /ws/short has a 10-byte text limit, /ws/tok wants
# access tokens.
EXTRA = (
    # 50 clients on 3 x 25 threads: no reserve, or an unlucky spread refuses some.
    "WSBridgeReserveWorkers 0\n"
    + FAST_CHAT
    + chat_location("/ws/short", "WSBridgeMaxTextLength 10", "WSBridgeRateLimit 1000 1000")
    + token_chat(SECRET))

apache = None  # set by setup_module
# 3 children x 25 threads: the 50-client test needs 50 workers at once.
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, children=3,
                                              threads=25)


async def connect(path="/ws/fast", **kw):
    return await ChatClient.connect(apache.port, path=path, **kw)


def members_after(presence, events):
    """Room members as a page keeps them: presence, then join/leave events."""
    members = list(presence["members"])
    for e in events:
        if e["type"] != "system":
            continue
        if e["event"] == "join" and e["name"] not in members:
            members.append(e["name"])
        elif e["event"] == "leave" and e["name"] in members:
            members.remove(e["name"])
    return members


# --- total order ---------------------------------------------------------------

@time_limit(40)
def test_fifty_clients_three_rooms_total_order():
    rooms = [uniq(f"order{k}") for k in range(3)]
    n, per_client = 50, 3

    async def go():
        clients = await asyncio.gather(*(connect(name=f"u{i}") for i in range(n)))
        room_of = {c: rooms[i % 3] for i, c in enumerate(clients)}
        try:
            assert len({c.pid for c in clients}) >= 2, "all 50 clients in one child"
            joins = await asyncio.gather(*(c.join(room_of[c], timeout=15) for c in clients))
            presence = {c: p for c, (_, _, p) in zip(clients, joins)}
            names = {r: sorted(c.names[r] for c in clients if room_of[c] == r) for r in rooms}
            assert all(c.names[room_of[c]] == c.you for c in clients), "no clash expected here"

            async def until_all_joined(c):
                r = room_of[c]
                await c.wait_events(r, lambda evs: sorted(members_after(presence[c], evs)) == names[r],
                                    timeout=15)
            await asyncio.gather(*(until_all_joined(c) for c in clients))

            async def talk(c):
                for k in range(per_client):
                    await c.message(room_of[c], f"{c.you}-m{k}")
            await asyncio.gather(*(talk(c) for c in clients))

            def count(r):
                return per_client * len(names[r])

            async def until_all_messages(c):
                r = room_of[c]
                await c.wait_events(r, lambda evs: n_messages(evs) >= count(r),
                                    timeout=15)
            await asyncio.gather(*(until_all_messages(c) for c in clients))

            # 5 clients per room go: some say leave, some just close.
            leavers = [c for i, c in enumerate(clients) if i < 15]
            stayers = [c for c in clients if c not in leavers]
            by_cmd = leavers[::2]
            by_close = [c for c in leavers if c not in by_cmd]
            await asyncio.gather(*(c.leave(room_of[c]) for c in by_cmd))
            await asyncio.gather(*(c.close() for c in by_close))
            gone = {r: {c.names[r] for c in leavers if room_of[c] == r} for r in rooms}

            async def own_leave(c):
                r = room_of[c]
                await c.wait_events(r, last_is("leave", c.names[r]),
                                    timeout=10)

            async def until_leaves(c):
                r = room_of[c]
                await c.wait_events(r, lambda evs: gone[r] <= {
                    e["name"] for e in evs if is_event(e, "leave")}, timeout=10)
            await asyncio.gather(*(own_leave(c) for c in by_cmd), *(until_leaves(c) for c in stayers))

            for r in rooms:
                members = [c for c in clients if room_of[c] == r]
                order = check_total_order(members, r)
                msgs = [e for e in order if e["type"] == "message"]
                texts = [e["text"] for e in msgs]
                want = sorted(f"{nm}-m{k}" for nm in names[r] for k in range(per_client))
                assert sorted(texts) == want, f"room {r}: messages in the room order != messages sent"
                for e in msgs:
                    assert e["text"].startswith(e["from"] + "-"), f"wrong from: {e}"
                for nm in names[r]:  # each sender's own messages keep their order
                    mine = [t for t in texts if t.startswith(nm + "-")]
                    assert mine == [f"{nm}-m{k}" for k in range(per_client)], f"{nm}: {mine}"
                joins_ = [e["name"] for e in order if is_event(e, "join")]
                leaves = [e["name"] for e in order if is_event(e, "leave")]
                assert sorted(joins_) == names[r], f"room {r}: join events {joins_}"
                assert sorted(leaves) == sorted(gone[r]), f"room {r}: leave events {leaves}"
                assert len(order) == len(names[r]) * (1 + per_client) + len(gone[r])
                # every client that stayed got everything from its join to the end
                for c in members:
                    if c in stayers:
                        assert c.events[r][-1] == order[-1], f"{c.you} did not get the room's last event"
                # other rooms' events never reach a client
                for c in members:
                    assert set(c.events) == {r}, f"{c.you} got events of {set(c.events) - {r}}"
        finally:
            await close_all(clients)
    run(go(), timeout=38)
    no_child_crash(apache)


# --- history and resume ---------------------------------------------------------

@time_limit(25)
def test_history_size_and_complete_flag():
    a = Apache(extra_conf=EXTRA + "WSBridgeHistorySize 5\n").start()
    room = uniq("hist")

    async def go():
        clients = []

        async def newcomer(name):
            c = await ChatClient.connect(a.port, path="/ws/fast", name=name)
            clients.append(c)
            return c

        alice = await newcomer("alice")

        async def events(n):
            """alice's view of the room once it has n events (E0 = her join)."""
            await alice.wait_events(room, lambda evs: len(evs) >= n)
            assert len(alice.events[room]) == n, alice.events[room]
            return list(alice.events[room])

        try:
            h, _, _ = await alice.join(room)
            assert h["messages"] == [] and h["complete"] is True, h
            for k in range(3):
                await alice.message(room, f"m{k}")
            E = await events(4)                      # E0 join alice, E1-E3 m0-m2
            bob = await newcomer("bob")
            h, _, _ = await bob.join(room)
            assert h["messages"] == E and h["complete"] is True, h
            for k in range(3, 6):
                await alice.message(room, f"m{k}")
            E = await events(8)                      # E4 join bob, E5-E7 m3-m5
            carol = await newcomer("carol")
            h, _, _ = await carol.join(room)         # plain join: the last 5, 3 dropped
            assert h["messages"] == E[3:8], [e["seq"] for e in h["messages"]]
            assert h["complete"] is False, "older events were dropped: complete must be false"
            E = await events(9)                      # E8 join carol; kept: E4-E8
            dave = await newcomer("dave")
            h, _, _ = await dave.join(room, since=E[3]["seq"])
            assert h["complete"] is True, f"since = the newest dropped event: nothing missing {h}"
            assert h["messages"] == E[4:9], [e["seq"] for e in h["messages"]]
            E = await events(10)                     # E9 join dave; kept: E5-E9
            erin = await newcomer("erin")
            h, _, _ = await erin.join(room, since=E[2]["seq"])
            assert h["complete"] is False, f"since older than the history: {h}"
            assert h["messages"] == E[5:10], [e["seq"] for e in h["messages"]]
            E = await events(11)                     # E10 join erin
            fred = await newcomer("fred")
            h, _, _ = await fred.join(room, since=E[10]["seq"])
            assert h["messages"] == [] and h["complete"] is True, h
            E = await events(12)                     # E11 join fred
            # resume after a disconnect, away for longer than the history holds
            await bob.wait_events(room, lambda evs: evs[-1]["seq"] == E[11]["seq"])
            last = bob.events[room][-1]["seq"]
            await bob.close()
            for k in range(8):
                await alice.message(room, f"while-away-{k}")
            E = await events(21)                     # E12 leave bob, E13-E20 messages
            assert E[12]["type"] == "system" and E[12]["event"] == "leave", E[12]
            bob2 = await newcomer("bob")
            h, _, _ = await bob2.join(room, since=last)
            assert h["complete"] is False, "9 events since, history 5: complete must be false"
            assert h["messages"] == E[16:21], [e["seq"] for e in h["messages"]]
            check_total_order(clients, room, history_size=5)
        finally:
            await close_all(clients)

    try:
        run(go(), timeout=20)
        no_child_crash(a)
    finally:
        a.stop()


@time_limit(20)
def test_resume_after_disconnect_gets_exactly_the_missed_events():
    room = uniq("resume")

    async def go():
        a = await connect(name="ann")
        b = await connect(name="ben")
        c = await connect(name="cid")
        clients = [a, b, c]
        try:
            for x in clients:
                await x.join(room)
            await a.wait_events(room, lambda evs: len(evs) >= 3)
            for k in range(5):
                await b.message(room, f"before-{k}")
            await a.wait_events(room, lambda evs: len(a.texts(room)) == 5)
            since = a.events[room][-1]["seq"]
            seen_before = list(a.events[room])
            await a.close()
            # others talk while ann is away: her leave, 12 messages, cid leaves and comes back
            for k in range(6):
                await b.message(room, f"away-{k}")
                await c.message(room, f"away-c-{k}")
            await c.leave(room)
            await c.wait_events(room, last_is("leave", "cid"))
            await c.join(room)
            r = publish(apache.port, {"room": room, "text": "published while away"})
            assert r[0] == 202, r
            await b.wait_events(room, lambda evs: evs[-1]["type"] == "message"
                                and evs[-1]["text"] == "published while away")
            missed = [e for e in b.events[room] if e["seq"] > since]
            assert len(missed) == 1 + 12 + 2 + 1, missed  # ann's leave, msgs, cid leave+join, publish

            a2 = await connect(name="ann")
            clients.append(a2)
            h, j, p = await a2.join(room, since=since)
            assert h["complete"] is True, h
            got = h["messages"]
            assert got == missed, "resume did not give exactly the missed events:\n" \
                f"got  {[e['seq'] for e in got]}\nwant {[e['seq'] for e in missed]}"
            assert not {e["seq"] for e in got} & {e["seq"] for e in seen_before}, "duplicates"
            assert j["seq"] > missed[-1]["seq"]
            assert p["members"] == ["ben", "cid", "ann"], p
            # and live traffic continues right after the replay, without a gap
            await b.message(room, "after resume")
            await a2.wait_events(room, lambda evs: evs[-1]["type"] == "message")
            assert a2.events[room][-1]["text"] == "after resume"
            await b.wait_events(room, lambda evs: evs[-1].get("text") == "after resume")
            check_total_order([b, a2], room)  # cid left and came back: a legit gap
            # without since: the plain history (all, complete: fewer than 100 events)
            d = await connect(name="dee")
            clients.append(d)
            h, _, _ = await d.join(room)
            assert h["complete"] is True
            assert h["messages"][:len(seen_before)] == seen_before
            # a since from another server life (>= the join's own seq) is ignored: plain history
            e = await connect(name="eve")
            clients.append(e)
            h2, _, _ = await e.join(room, since=10**12)
            assert h2["complete"] is True and h2["messages"][:len(h["messages"])] == h["messages"], h2
        finally:
            await close_all(clients)
    run(go(), timeout=18)


# --- presence and names -----------------------------------------------------------

@time_limit(20)
def test_presence_and_name_clash_suffix():
    room = uniq("pres")

    async def go():
        clients = []
        try:
            alice = await connect(name="alice")
            clients.append(alice)
            assert alice.you == "alice", alice.welcome
            _, j, p = await alice.join(room)
            assert p == {"type": "presence", "room": room, "members": ["alice"], "you": "alice"}, p
            assert j["name"] == "alice"

            # welcome.rooms lists the rooms with members (another child may
            # apply alice's join a moment later: bounded retry)
            deadline = time.time() + 3
            while True:
                probe = await connect(name="probe")
                await probe.close()
                if {"room": room, "members": 1} in probe.welcome["rooms"] or time.time() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert {"room": room, "members": 1} in probe.welcome["rooms"], probe.welcome
            bob = await connect(name="bob")
            clients.append(bob)
            _, _, p = await bob.join(room)
            assert p["members"] == ["alice", "bob"] and p["you"] == "bob", p

            bob2 = await connect(name="bob")  # same name on another connection
            clients.append(bob2)
            assert bob2.you == "bob"
            _, j, p = await bob2.join(room)
            assert j["name"] == "bob#2" and p["you"] == "bob#2", (j, p)
            assert p["members"] == ["alice", "bob", "bob#2"], p

            # a name picked in the join (no ?name): clashes with alice
            anon = await connect()
            clients.append(anon)
            assert anon.you == f"guest-{anon.id}", anon.welcome
            _, _, p = await anon.join(room, name="alice")
            assert p["you"] == "alice#2" and p["members"][-1] == "alice#2", p
            # bob leaves; the next bob takes the free plain name again
            await bob.leave(room)
            await bob2.wait_events(room, last_is("leave", "bob"))
            bob3 = await connect(name="bob")
            clients.append(bob3)
            _, _, p = await bob3.join(room)
            assert p["you"] == "bob", p
            assert p["members"] == ["alice", "bob#2", "alice#2", "bob"], p
            # bob#2 leaves; the next bob becomes bob#2 again
            await bob2.close()
            await alice.wait_events(room, last_is("leave", "bob#2"))
            bob4 = await connect(name="bob")
            clients.append(bob4)
            _, _, p = await bob4.join(room)
            assert p["you"] == "bob#2", p
            # everybody who kept the presence list up to date by events agrees
            await alice.wait_events(room, last_is("join", "bob#2"))
            await anon.wait_events(room, last_is("join", "bob#2"))
            first = alice.frames[[f.get("type") for f in alice.frames].index("presence")]
            assert members_after(first, alice.events[room][1:]) == p["members"], \
                (members_after(first, alice.events[room][1:]), p["members"])
            pa = next(f for f in anon.frames if f.get("type") == "presence")
            assert members_after(pa, anon.events[room][1:]) == p["members"]
            # names are per room: bob#2 here is plain bob in another room
            other = uniq("pres-other")
            _, _, p2 = await bob4.join(other)
            assert p2["you"] == "bob" and p2["members"] == ["bob"], p2
            check_total_order([alice, anon, bob3, bob4], room)
        finally:
            await close_all(clients)
    run(go(), timeout=18)


def test_name_and_room_rules():
    room = uniq("rules")

    async def go():
        c = await connect(name="ruler")
        try:
            bad_rooms = ["", "has space", "a/b", "x" * 65, "é", "room#1", "a|b"]
            for r in bad_rooms:
                await c.send({"type": "join", "room": r})
                await c.expect_error("bad-room")
            await c.send({"type": "join", "room": 42})
            await c.expect_error("bad-field")
            bad_names = ["a#b", "#", "x" * 33, "é" * 33, " lead", "trail ", "a|b", "bell\u0007",
                         "del\u007f", "c1\u0085", "", "nbsp\u00a0"]
            for nm in bad_names:
                await c.send({"type": "join", "room": room, "name": nm})
                await c.expect_error("bad-name")
            await c.send({"type": "join", "room": room, "name": 7})
            await c.expect_error("bad-field")
            # the limits themselves are fine: 64-char room, 32 code points (64 bytes) name
            long_room = "R" * 64
            _, _, p = await c.join(long_room, name="é" * 32)
            assert p["you"] == "é" * 32, p
            _, _, p = await c.join(room, name="in side")  # inner spaces are allowed
            assert p["you"] == "in side", p
            await c.send({"type": "direct", "to": "bob#2", "text": "hi"})
            await c.expect_error("bad-name")
            await c.send({"type": "direct", "to": "x" * 33, "text": "hi"})
            await c.expect_error("bad-name")
            # the connection is still fine
            await c.message(room, "still here")
            m = await c.next(lambda f: f.get("type") == "message")
            assert m["text"] == "still here" and m["from"] == "in side", m
            assert c.closed is None
        finally:
            await c.close()
    run(go(), timeout=15)


def test_room_limit_leave_and_rejoin():
    base = uniq("many")

    async def go():
        c = await connect(name="roomy")
        try:
            for k in range(32):  # max_rooms_per_connection
                await c.join(f"{base}-{k}")
            await c.send({"type": "join", "room": f"{base}-32"})
            e = await c.expect_error("too-many-rooms")
            assert e.get("room") == f"{base}-32", e
            await c.leave(f"{base}-0")
            ev = await c.next(lambda f: f.get("room") == f"{base}-0", what="own leave")
            assert (ev["type"], ev["event"], ev["name"]) == ("system", "leave", "roomy"), ev
            await c.message(f"{base}-0", "gone")
            await c.expect_error("not-joined")
            h, _, p = await c.join(f"{base}-0")  # rejoin: the history shows the stay and the leave
            assert [(e["event"], e["name"]) for e in h["messages"]] == \
                [("join", "roomy"), ("leave", "roomy")], h
            assert p["members"] == ["roomy"]
            await c.send({"type": "join", "room": f"{base}-32"})  # 32 rooms again
            await c.expect_error("too-many-rooms")
            assert c.closed is None
        finally:
            await c.close()
    run(go(), timeout=15)


def test_text_length_limit():
    room = uniq("len")

    async def go():
        c = await connect(name="writer")
        s = await connect(path="/ws/short", name="shorty")
        try:
            await c.join(room)
            await s.join(room)
            ok = ["a" * 4096, "é" * 2048, "😀" * 1024, "x"]
            for t in ok:
                await c.message(room, t)
                m = await c.next(lambda f: f.get("type") in ("message", "error"))
                assert m["type"] == "message" and m["text"] == t, f"{len(t.encode())} bytes: {m}"
            for t in ["a" * 4097, "é" * 2049, "😀" * 1024 + "a"]:
                await c.message(room, t)
                e = await c.expect_error("too-long")
                assert e.get("room") in (None, room), e
            await c.message(room, "")
            await c.expect_error("bad-field")
            # WSBridgeMaxTextLength 10 on /ws/short
            await s.message(room, "0123456789")
            m = await s.next(lambda f: f.get("type") == "error" or f.get("from") == "shorty")
            assert m["type"] == "message" and m["text"] == "0123456789", m
            await s.message(room, "0123456789a")
            await s.expect_error("too-long")
            await s.message(room, "éééé\u00e9\u00e9")  # 6 characters, 12 bytes
            await s.expect_error("too-long")
            # too-long texts never reached the room
            await c.message(room, "end")
            await s.wait_events(room, lambda evs: evs[-1].get("text") == "end")
            assert max(len(t.encode()) for t in s.texts(room)) <= 4096
            assert len(s.texts(room)) == len(ok) + 2
        finally:
            await close_all([c, s])
    run(go(), timeout=15)


# --- rate limit -------------------------------------------------------------------

@time_limit(25)
def test_rate_limit_refuses_then_closes_with_1008():
    room = uniq("rate")

    async def go():
        spam = await connect(path="/ws/chat", name="spammer")  # default 20/s, burst 40
        watch = await connect(name="watcher")
        try:
            await watch.join(room)
            await spam.join(room)  # 1 token
            sent = [f"s{k}" for k in range(60)]
            for t in sent[:45]:  # a burst over the bucket: some refused
                await spam.message(room, t)
            await asyncio.sleep(0.3)
            for t in sent[45:]:  # then within the rate: accepted, strikes reset
                await spam.message(room, t)
                await asyncio.sleep(0.1)
            await spam.send({"type": "leave", "room": uniq("not-joined")})  # leave is free
            await spam.next(lambda f: f.get("code") == "not-joined", what="not-joined")
            errors = [f for f in spam.frames if f.get("type") == "error"]
            limited = [f for f in errors if f.get("code") == "rate-limited"]
            assert len(limited) == len(errors) - 1, errors
            assert 1 <= len(limited) <= 9, f"{len(limited)} rate-limited of a 45 burst + 15 paced"
            assert spam.closed is None
            accepted = 60 - len(limited)
            await watch.wait_events(room, lambda evs: len(watch.texts(room)) >= accepted, timeout=5)
            got = watch.texts(room)
            assert len(got) == accepted, f"watcher got {len(got)} messages, {accepted} accepted"
            it = iter(sent)
            assert all(t in it for t in got), "accepted messages out of order"
            assert got[-15:] == sent[45:], "paced messages must all pass"
            # sustained abuse: 10 refusals in a row -> close 1008
            before = len(limited)
            try:
                for k in range(200):
                    await spam.message(room, f"abuse{k}")
            except Exception:  # noqa: B902 - the server may close while we send
                pass
            code, reason = await spam.wait_closed(timeout=5)
            assert code == 1008, f"close {code} {reason!r}, want 1008"
            assert reason == "rate limit exceeded", reason
            limited = [f for f in spam.frames if f.get("code") == "rate-limited"]
            assert len(limited) - before >= 10, f"{len(limited) - before} refusals before the close"
            # the watcher sees the spammer leave, and the room goes on
            await watch.wait_events(room, last_is("leave", "spammer"))
            check_strictly_increasing(watch.events[room], "watcher")
        finally:
            await close_all([spam, watch])
    run(go(), timeout=22)


# --- direct messages --------------------------------------------------------------

@time_limit(20)
def test_direct_reaches_every_connection_of_both_users():
    room = uniq("dm")

    async def go():
        bob1 = await connect(name="bob")
        bob2 = await connect(name="bob")
        alice = await connect(name="alice")
        alice2 = await connect(name="alice")   # alice's other tab, in no room
        carol = await connect(name="carol")
        dave = await connect()                 # user name from the first join
        clients = [bob1, bob2, alice, alice2, carol, dave]
        try:
            for c in (bob1, bob2, alice, carol):
                await c.join(room)
            other_room = uniq("dm-other")
            await dave.join(other_room, name="dave")
            assert bob2.names[room] == "bob#2"

            def directs(c):
                return [f for f in c.frames if f.get("type") == "direct"]

            await alice.send({"type": "direct", "to": "bob", "text": "Lunch?"})
            for c in (bob1, bob2, alice, alice2):
                d = await c.next(lambda f: f.get("type") == "direct", what="direct")
                assert {k: d[k] for k in ("from", "to", "text")} == \
                    {"from": "alice", "to": "bob", "text": "Lunch?"}, d
                assert isinstance(d.get("ts"), int) and "seq" not in d, d
            # reply from bob's second tab (bob#2 in the room, user name bob)
            await bob2.send({"type": "direct", "to": "alice", "text": "Sure"})
            for c in (bob1, bob2, alice, alice2):
                d = await c.next(lambda f: f.get("type") == "direct", what="reply")
                assert (d["from"], d["to"], d["text"]) == ("bob", "alice", "Sure"), d
            # dave's join may still be on its way to alice's child: once alice
            # sees a later event of hers, her child has applied it (bus order)
            await alice.message(room, "after dave joined")
            await alice.wait_events(room, lambda evs: evs[-1].get("text") == "after dave joined")
            await alice.send({"type": "direct", "to": "dave", "text": "hi dave"})
            for c in (dave, alice, alice2):  # the sender's tabs get it too
                d = await c.next(lambda f: f.get("type") == "direct", what="direct to dave")
                assert (d["from"], d["to"], d["text"]) == ("alice", "dave", "hi dave"), d
            # nobody else saw them: a later room message is the sync point (bus order)
            await alice.message(room, "sync")
            for c in (bob1, bob2, carol):
                await c.wait_events(room, lambda evs: evs[-1].get("text") == "sync")
            await dave.send({"type": "direct", "to": "carol", "text": "sync"})
            for c in (carol, dave):
                d = await c.next(lambda f: f.get("type") == "direct", what="sync direct")
                assert (d["from"], d["to"]) == ("dave", "carol"), d
            assert len(directs(carol)) == 1
            for c in (bob1, bob2):
                assert len(directs(c)) == 2, directs(c)
            assert len(directs(alice)) == 3, directs(alice)
            assert len(directs(alice2)) == 3, directs(alice2)
            assert len(directs(dave)) == 2
            # unknown user, and a suffixed room name is not a user name
            await alice.send({"type": "direct", "to": "nobody-here", "text": "hello?"})
            await alice.expect_error("no-such-user")
            await alice.send({"type": "direct", "to": "bob#2", "text": "x"})
            await alice.expect_error("bad-name")
            await alice.send({"type": "direct", "text": "x"})
            await alice.expect_error("missing-field")
            # directs are not room events and not in the history
            late = await connect(name="late")
            clients.append(late)
            h, _, _ = await late.join(room)
            assert all(e["type"] in ("message", "system") for e in h["messages"])
            assert "Lunch?" not in [e.get("text") for e in h["messages"]]
        finally:
            await close_all(clients)
    run(go(), timeout=18)


# --- malformed input ----------------------------------------------------------------

@time_limit(20)
def test_malformed_input_never_disturbs_others():
    room = uniq("bad")
    bad = [
        ("not json", "bad-json"),
        ("[1, 2]", "bad-json"),
        ('"just a string"', "bad-json"),
        ('{"type": "message", "room": ', "bad-json"),
        ('{"room": "x"}', "missing-field"),
        ('{"type": 5}', "bad-field"),
        ('{"type": "dance"}', "unknown-type"),
        ('{"type": "message", "text": "x"}', "missing-field"),
        ('{"type": "message", "room": "%s"}' % room, "missing-field"),
        ('{"type": "message", "room": "%s", "text": 5}' % room, "bad-field"),
        ('{"type": "message", "room": "%s", "text": ["a"]}' % room, "bad-field"),
        ('{"type": "message", "room": "%s", "text": ""}' % room, "bad-field"),
        ('{"type": "join", "room": "%s", "since": "5"}' % room, "bad-field"),
        ('{"type": "join", "room": "%s", "since": -1}' % room, "bad-field"),
        ('{"type": "join", "room": "%s", "since": 5.5}' % room, "bad-field"),
        ('{"type": "join", "room": "%s"}' % room, "already-joined"),
        ('{"type": "message", "room": "never-joined-here", "text": "x"}', "not-joined"),
        ('{"type": "leave", "room": "never-joined-here"}', "not-joined"),
        ('{"type": "direct", "to": "x"}', "missing-field"),
        ('{"type": "direct", "to": null, "text": "x"}', "bad-field"),
    ]

    async def go():
        a = await connect(name="obs-a")
        b = await connect(path="/ws/chat", name="obs-b")
        s = await connect(name="talker")
        x = await connect(name="mallory")
        y = await connect(name="binary-only")
        clients = [a, b, s, x, y]
        try:
            for c in (a, b, s, x):
                await c.join(room)

            async def talk():
                for k in range(40):
                    await s.message(room, f"t{k}")
                    await asyncio.sleep(0.01)

            async def garbage():
                for raw, code in bad:
                    await x.send(raw)
                    e = await x.expect_error(code)
                    assert e["code"] == code, (raw, e)
                await x.send(b"\x01\x02binary")
                return await x.wait_closed()

            t = asyncio.ensure_future(talk())
            await y.send(b"binary before anything")
            code_y, _ = await y.wait_closed()
            code_x, reason = await garbage()
            await t
            assert code_y == 1003, f"binary frame: close {code_y}, want 1003"
            assert code_x == 1003, f"binary frame: close {code_x} {reason!r}, want 1003"
            for c in (a, b, s):
                await c.wait_events(room, lambda evs: c.texts(room)[-1:] == ["t39"], timeout=5)
                assert c.texts(room) == [f"t{k}" for k in range(40)], c.texts(room)
                assert c.closed is None
            for c in (a, b, s):
                await c.wait_events(room, lambda evs: any(is_event(e, "leave")
                                                          and e["name"] == "mallory" for e in evs))
            check_total_order([a, b, s, x], room)
            # nothing of the garbage reached the others
            for c in (a, b, s):
                assert not [f for f in c.frames if f.get("type") == "error"], c.you
        finally:
            await close_all(clients)
    run(go(), timeout=18)


# --- tokens -------------------------------------------------------------------------

def raw_upgrade(path, extra=None):
    raw, _ = handshake_request(path=path, extra=extra)
    status, headers, body, sock = read_http_response(apache.port, raw)
    sock.close()
    return status, headers, body


def qtok(token):
    from urllib.parse import quote
    return quote(token, safe="")


def test_token_helper_matches_the_documented_example():
    assert make_token("secret", "alice", 2000000000) == \
        "alice|2000000000|31be3667a57d344eb8b0f98ff30da1eba5067944d0449d18bce828520387c005"


@time_limit(20)
def test_tokens_query_and_subprotocol():
    room = uniq("tok")

    async def go():
        good = make_token(SECRET, "alice")
        c1 = await connect(path="/ws/tok", token=good)
        clients = [c1]
        try:
            assert c1.you == "alice", c1.welcome
            _, _, p = await c1.join(room, name="someone-else")  # a token's uid wins
            assert p["you"] == "alice", p
            # the subprotocol way: the server must answer with that subprotocol
            t2 = make_token(SECRET, "bob")
            c2 = await connect(path="/ws/tok", subprotocols=["token." + t2])
            clients.append(c2)
            assert c2.ws.subprotocol == "token." + t2, f"answered subprotocol {c2.ws.subprotocol!r}"
            assert c2.you == "bob", c2.welcome
            _, _, p = await c2.join(room)
            assert p["you"] == "bob" and p["members"] == ["alice", "bob"], p
            # a non-ASCII uid via ?token= (URL-encoded)
            c3 = await connect(path="/ws/tok", token=make_token(SECRET, "Zoë Ünal"))
            clients.append(c3)
            assert c3.you == "Zoë Ünal", c3.welcome
            # direct between token users uses the uid (c3 joins first: then its
            # child has applied bob's earlier join too)
            await c3.join(room)
            await c3.send({"type": "direct", "to": "bob", "text": "hi"})
            d = await c2.next(lambda f: f.get("type") == "direct")
            assert d["from"] == "Zoë Ünal", d
        finally:
            await close_all(clients)
    run(go(), timeout=15)


def test_bad_tokens_get_401_before_the_upgrade():
    now = int(time.time())
    good = make_token(SECRET, "alice")
    forged = make_token(SECRET[::-1], "alice")
    other_user = good.replace("alice|", "admin|", 1)  # signature of another uid
    expired = make_token(SECRET, "alice", now - 5)
    cases = {
        "missing": "/ws/tok",
        "empty": "/ws/tok?token=",
        "bad signature": "/ws/tok?token=" + qtok(forged),
        "signature of another uid": "/ws/tok?token=" + qtok(other_user),
        "expired": "/ws/tok?token=" + qtok(expired),
        "malformed: one field": "/ws/tok?token=alice",
        "malformed: two fields": "/ws/tok?token=" + qtok(f"alice|{now + 100}"),
        "malformed: uppercase hex": "/ws/tok?token=" + qtok(good[:-64] + good[-64:].upper()),
        "malformed: short signature": "/ws/tok?token=" + qtok(good[:-1]),
        "malformed: expiry not a number": "/ws/tok?token=" + qtok(make_token(SECRET, "alice", "soon")),
        "uid with #": "/ws/tok?token=" + qtok(make_token(SECRET, "al#ce")),
    }
    for what, path in cases.items():
        status, headers, body = raw_upgrade(path)
        assert status == 401, f"{what}: {status} {body!r}"
        assert "sec-websocket-accept" not in headers and headers.get("upgrade") is None, (what, headers)
    # a forged token as subprotocol
    status, headers, _ = raw_upgrade("/ws/tok", {"Sec-WebSocket-Protocol": "token." + forged})
    assert status == 401, status
    status, headers, _ = raw_upgrade("/ws/tok", {"Sec-WebSocket-Protocol": "chat, token." + expired})
    assert status == 401, status
    # the good one really works on the raw path too
    status, headers, _ = raw_upgrade("/ws/tok?token=" + qtok(good))
    assert status == 101, status
    # the other locations need no token
    status, _, _ = raw_upgrade("/ws/chat")
    assert status == 101
    no_child_crash(apache)
