"""Large chat rooms through a real Apache (docs/large-rooms.md): 300
members in one room with `WSBridgePresenceLimit 20`, spread over several
event children. Up to 20 members every join is an event to everybody;
above it a joiner's presence lists the first 20 names with the count, the
others get folded presence updates instead of join events, and the history
keeps only what members saw live. Messages, direct messages and name
suffixes work as in any room; when the room shrinks back to the limit the
lists are whole again and join/leave events resume."""
import asyncio

from chatclient import FAST_CHAT, ChatClient, close_all, run, stage, uniq
from harness import no_child_crash, shared_apache
from run import time_limit

LIMIT = 20
N = 300

EXTRA = f"WSBridgePresenceLimit {LIMIT}\nWSBridgeReserveWorkers 0\n" + FAST_CHAT

apache = None  # set by setup_module
# 2 children x 200 threads to start with; mpm_event adds children as the
# spare threads run low, so the members end up in several processes.
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA, children=2,
                                              threads=200)


class View:
    """A room's members as a page keeps them (docs/chat-protocol.md):
    presence frames, then join/leave events while the room is not
    truncated; an update without `members` keeps the list."""

    def __init__(self):
        self.members, self.count, self.truncated = [], 0, False

    def apply(self, f):
        if f.get("type") == "presence":
            if "members" in f:
                self.members = list(f["members"])
            self.truncated = bool(f.get("truncated", False))
            self.count = f.get("count", len(self.members))
        elif f.get("type") == "system" and not self.truncated:
            if f["event"] == "join" and f["name"] not in self.members:
                self.members.append(f["name"])
            elif f["event"] == "leave" and f["name"] in self.members:
                self.members.remove(f["name"])
            self.count = len(self.members)


def view_of(c, room):
    v = View()
    for f in c.frames:
        if f.get("room") == room:
            v.apply(f)
    return v


async def connect_many(names, path="/ws/fast", parallel=50):
    sem = asyncio.Semaphore(parallel)

    async def one(name):
        async with sem:
            return await ChatClient.connect(apache.port, path=path, name=name, timeout=15)
    return await asyncio.gather(*(one(n) for n in names))


async def join_all(clients, room, parallel=100):
    sem = asyncio.Semaphore(parallel)

    async def one(c):
        async with sem:
            return await c.join(room, timeout=20)
    return await asyncio.gather(*(one(c) for c in clients))


async def until_count(c, room, count, timeout=6.0):
    """Reads until c's view of room says count members (updates are
    folded to one a second, so this can take up to about two)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while view_of(c, room).count != count:
        left = deadline - loop.time()
        if left <= 0:
            v = view_of(c, room)
            raise AssertionError(f"{c.you}: view of {room} counts {v.count}, want {count}; "
                                 f"last frames {c.frames[-3:]}")
        try:
            await c._read(left)
        except asyncio.TimeoutError:
            pass


@time_limit(90)
def test_three_hundred_members_one_room():
    room = uniq("big")

    async def go():
        stage("connecting 300 clients")
        clients = await connect_many([f"m{i:03d}" for i in range(N)])
        extra = []
        try:
            pids = {c.pid for c in clients}
            assert len(pids) >= 2, f"all {N} members in one child: {pids}"
            stage("300 joins")
            answers = await join_all(clients, room)
            # Join order is bus order: the seq of each one's own join event.
            own_seq = {c: j["seq"] for c, (_, j, _) in zip(clients, answers)}
            order = sorted(clients, key=lambda c: own_seq[c])
            names = [c.names[room] for c in order]
            assert sorted(names) == sorted(c.you for c in clients), "a name got a suffix"
            first = names[:LIMIT]
            presence = {c: p for c, (_, _, p) in zip(clients, answers)}
            for k, c in enumerate(order, 1):
                p = presence[c]
                if k <= LIMIT:
                    assert p["members"] == names[:k], f"{c.you} (#{k}): presence {p}"
                    assert "count" not in p and "truncated" not in p, f"#{k}: {p}"
                else:
                    assert p["members"] == first, f"{c.you} (#{k}): presence lists {p['members']}"
                    assert p["count"] == k and p["truncated"] is True, f"#{k}: {p}"
                assert p["you"] == c.you

            stage("waiting for the last presence update")
            await asyncio.gather(*(until_count(c, room, N) for c in clients))
            for k, c in enumerate(order, 1):
                v = view_of(c, room)
                assert (v.members, v.count, v.truncated) == (first, N, True), \
                    f"{c.you} (#{k}) ends with {v.members[:3]}... count {v.count}"
                # Join events of others: only those of the first LIMIT, and
                # only the ones after this member's own.
                joins = [e["name"] for e in c.events.get(room, [])
                         if e["type"] == "system" and e["event"] == "join" and e["name"] != c.you]
                assert joins == names[k:LIMIT], f"{c.you} (#{k}) saw joins {joins[:5]}..."
                # Linear, not N: its own 3 answers, the join events while
                # within the limit, and a few folded updates.
                room_frames = [f for f in c.frames if f.get("room") == room]
                assert len(room_frames) <= 3 + LIMIT + 10, \
                    f"{c.you} got {len(room_frames)} frames for the room"

            stage("a message to everybody")
            last = order[-1]
            await last.message(room, "from the back row")
            await asyncio.gather(*(c.next(lambda f: f.get("type") == "message" and f.get("room") == room,
                                          10, what="the message") for c in clients))
            msg_seqs = {c.events[room][-1]["seq"] for c in clients}
            assert len(msg_seqs) == 1, f"the message has several seqs: {msg_seqs}"

            stage("a direct message to a member far down the list")
            await order[0].send({"type": "direct", "to": last.you, "text": "psst"})
            d = await last.next(lambda f: f.get("type") == "direct", 5, what="the direct")
            assert d["from"] == order[0].you and d["text"] == "psst"

            stage("a name clash")
            twin = (await connect_many([names[5]]))[0]
            extra.append(twin)
            h, j, p = await twin.join(room, timeout=10)
            assert j["name"] == f"{names[5]}#2" and p["you"] == f"{names[5]}#2", (j, p)
            assert p["count"] == N + 1 and p["members"] == first, p
            # The history holds what members saw live: the first LIMIT joins
            # and the message, none of the 280 quiet joins.
            hist = h["messages"]
            assert [e["name"] for e in hist if e["type"] == "system"] == first, \
                [e.get("name") for e in hist][:25]
            assert [e["text"] for e in hist if e["type"] == "message"] == ["from the back row"]
            assert h["complete"] is True

            stage("back to the limit")
            keep = order[:10] + order[-5:]  # + twin: 16 members
            leaving = [c for c in order if c not in keep]
            await close_all(leaving)
            stay = keep + [twin]
            want = [c.names[room] for c in order[:10] + order[-5:]] + [twin.names[room]]
            await asyncio.gather(*(until_count(c, room, len(want), timeout=10) for c in stay))
            for c in stay:
                v = view_of(c, room)
                assert (v.members, v.truncated) == (want, False), \
                    f"{c.you}: view {v.members} truncated={v.truncated}, want {want}"
            # Within the limit again: a join is an event for everybody.
            newcomer = (await connect_many(["newcomer"]))[0]
            extra.append(newcomer)
            await newcomer.join(room, timeout=10)
            await asyncio.gather(*(c.next(lambda f: f.get("type") == "system" and f.get("room") == room
                                          and f["event"] == "join" and f["name"] == "newcomer",
                                          5, what="the newcomer's join") for c in stay))
            for c in stay + [newcomer]:
                v = view_of(c, room)
                assert v.members == want + ["newcomer"] and v.count == len(want) + 1, \
                    f"{c.you}: {v.members}"
            clients = stay
        finally:
            await close_all(clients + extra)
    run(go(), timeout=85)
    no_child_crash(apache)


@time_limit(60)
def test_resume_in_a_large_room_is_exact():
    """A member drops out of a large room; meanwhile others join and leave
    (quietly) and one message is said. Its resume with `since` gets the
    message alone and `complete: true`: nothing it would have seen is
    missing, and nothing it would not have seen is invented."""
    room = uniq("bigresume")

    async def go():
        clients = await connect_many([f"r{i:02d}" for i in range(LIMIT + 10)])
        extra = []
        try:
            await join_all(clients, room)
            me = clients[-1]
            await until_count(me, room, LIMIT + 10)
            last_seq = max(e["seq"] for e in me.events[room])
            await me.close()
            stage("quiet churn while away")
            others = await connect_many([f"q{i:02d}" for i in range(5)])
            extra.extend(others)
            await join_all(others, room)
            await close_all(others[:3])
            await clients[0].message(room, "said while you were away")
            await clients[0].next(lambda f: f.get("type") == "message", 5)
            back = (await connect_many([me.you]))[0]
            extra.append(back)
            h, j, p = await back.join(room, since=last_seq, timeout=10)
            assert h["complete"] is True, h
            assert [(e["type"], e.get("text")) for e in h["messages"]] == \
                [("message", "said while you were away")], h["messages"]
            assert p["truncated"] is True and p["count"] == LIMIT + 10 - 1 + 2 + 1, p
        finally:
            await close_all(clients + extra)
    run(go(), timeout=55)
    no_child_crash(apache)


@time_limit(30)
def test_directive_values():
    from harness import Apache
    for value in ("0", "100", "off", "OFF", "1000000"):
        ok, out = Apache(extra_conf=f"WSBridgePresenceLimit {value}\n").configtest()
        assert ok, f"WSBridgePresenceLimit {value} refused: {out}"
    for value in ("-1", "lots", "1000001", "10 20"):
        ok, out = Apache(extra_conf=f"WSBridgePresenceLimit {value}\n").configtest()
        assert not ok and "WSBridgePresenceLimit" in out, f"WSBridgePresenceLimit {value}: {out}"
    # Rooms are shared by every endpoint: server config only.
    ok, out = Apache(extra_conf="<Location /x>\n  WSBridgePresenceLimit 5\n</Location>\n").configtest()
    assert not ok and "WSBridgePresenceLimit" in out, out
