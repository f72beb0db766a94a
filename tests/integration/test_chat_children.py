"""One chat across every Apache child: clients served by different child
processes (welcome.pid) see one room with one order, under mpm_event and
mpm_prefork; a child killed with SIGKILL does not stop the others and its
members leave the room; a graceful restart closes everybody with 1001 and
they resume without a gap, history included."""
import asyncio
import os
import signal
import time

from chatclient import (FAST_CHAT, ChatClient, Closed, check_total_order, is_event, n_messages,
                        publish, run_with_clients, stage, status_json, uniq)
from harness import CRASH_MARKERS, Apache
from run import time_limit

FAST = (
    # These tests use every worker thread for chat clients on purpose.
    "WSBridgeReserveWorkers 0\n"
    + FAST_CHAT)


async def connect(a, name, path="/ws/fast"):
    return await ChatClient.connect(a.port, path=path, name=name)


async def connect_retry(a, name, path="/ws/fast", timeout=8.0):
    """Connects, retrying while the server restarts (503, refused)."""
    deadline = time.time() + timeout
    while True:
        try:
            return await ChatClient.connect(a.port, path=path, name=name)
        except Exception as e:  # noqa: B902 - retried until the deadline
            if time.time() > deadline:
                raise AssertionError(f"no WebSocket for {name} within {timeout}s: {e!r}")
            await asyncio.sleep(0.1)


def crashes(a, except_pids=()):
    out = []
    for line in a.error_log().splitlines():
        if any(m in line for m in CRASH_MARKERS) and \
                not any(f"pid {p} " in line for p in except_pids):
            out.append(line)
    return out


async def exchange(clients, room, per_client=5, timeout=15):
    """Everybody joins room, waits for everybody's join, sends per_client
    messages at once and waits for all of them; returns the room order."""
    stage(f"exchange: {len(clients)} joins")
    await asyncio.gather(*(c.join(room, timeout=timeout) for c in clients))
    names = sorted(c.names[room] for c in clients)

    def joined_all(c):
        first = next(f for f in c.frames if f.get("type") == "presence" and f.get("room") == room)
        return lambda evs: set(names) <= set(first["members"]) | {
            e["name"] for e in evs if is_event(e, "join")}
    stage("exchange: waiting for everybody's join")
    await asyncio.gather(*(c.wait_events(room, joined_all(c), timeout=timeout) for c in clients))
    stage("exchange: messages")

    async def talk(c):
        for k in range(per_client):
            await c.message(room, f"{c.names[room]}:{k}")
    await asyncio.gather(*(talk(c) for c in clients))
    total = per_client * len(clients)
    await asyncio.gather(*(c.wait_events(room, lambda evs: n_messages(evs) >= total, timeout=timeout)
                           for c in clients))
    order = check_total_order(clients, room)
    texts = sorted(e["text"] for e in order if e["type"] == "message")
    want = sorted(f"{n}:{k}" for n in names for k in range(per_client))
    assert texts == want, "messages lost or duplicated"
    for c in clients:
        got = [e for e in c.events[room] if e["type"] == "message"]
        assert len(got) == total, f"{c.you} (pid {c.pid}) got {len(got)} messages, want {total}"
        assert got == [e for e in order if e["type"] == "message"], f"{c.you}: another message order"
    return order


@time_limit(30)
def test_event_children_share_one_chat():
    # 14 WebSockets on 4 x 5 threads: at most 5 per child, so at least 3
    # children. With 4 x 4 (2 spare) a connection was once accepted by a
    # child whose threads were all held and waited there (README, "MPM,
    # threads and capacity": leave spare threads).
    with Apache(extra_conf=FAST, mpm="event", children=4, threads=5, max_workers=20) as a:
        async def go(clients):
            for i in range(14):  # one by one
                stage(f"connecting client {i}")
                clients.append(await connect(a, f"ev{i}"))
            pids = {c.pid for c in clients}
            assert len(pids) >= 3, f"14 clients on 4x5 workers, but only children {pids}"
            live = set(a.child_pids())
            assert pids <= live, f"welcome.pid {pids - live} is not an Apache child of {live}"
            await exchange(clients, uniq("children"))
        run_with_clients(go, timeout=25)
        assert not crashes(a), crashes(a)


@time_limit(30)
def test_prefork_children_share_one_chat():
    with Apache(extra_conf=FAST, mpm="prefork", children=6) as a:
        async def go(clients):
            for i in range(8):
                stage(f"connecting client {i}")
                clients.append(await ChatClient.connect(a.port, path="/ws/fast", name=f"pf{i}",
                                                        timeout=10))
            pids = [c.pid for c in clients]
            assert len(set(pids)) == 8, f"prefork: one process per WebSocket, got pids {pids}"
            await exchange(clients, uniq("prefork"), per_client=4)
        run_with_clients(go, timeout=25)
        assert not crashes(a), crashes(a)


@time_limit(30)
def test_kill_9_of_a_child_during_traffic():
    room = uniq("kill")
    with Apache(extra_conf=FAST, mpm="event", children=4, threads=4, max_workers=16) as a:
        async def go(clients):
            for i in range(12):
                stage(f"connecting client {i}")
                clients.append(await connect(a, f"k{i}"))
            by_pid = {}
            for c in clients:
                by_pid.setdefault(c.pid, []).append(c)
            assert len(by_pid) >= 2, f"all 12 clients in one child {list(by_pid)}"
            await exchange(clients, room, per_client=2)
            # the child with the fewest of our clients dies; the others talk on
            victim = min(by_pid, key=lambda p: len(by_pid[p]))
            doomed = by_pid[victim]
            alive = [c for c in clients if c.pid != victim]
            doomed_names = {c.names[room] for c in doomed}
            t_kill = time.time()
            os.kill(victim, signal.SIGKILL)

            async def talk(c, n=20):
                for k in range(n):
                    await c.message(room, f"after:{c.names[room]}:{k}")
                    await asyncio.sleep(0.1)
            senders = asyncio.gather(*(talk(c) for c in alive))

            async def sees_death(c):
                t0 = time.time()
                await c.wait_events(room, lambda evs: doomed_names <= {
                    e["name"] for e in evs if is_event(e, "leave")
                    and e["seq"] > 0 and e["ts"] >= t_kill * 1000 - 1000}, timeout=8)
                return time.time() - t0

            # the killed child's clients lose their connection
            for c in doomed:
                try:
                    await c.wait_closed(timeout=3)
                except Closed:
                    pass
                assert c.closed is not None, f"{c.you}: connection survived kill -9 of its child"
            waits = await asyncio.gather(*(sees_death(c) for c in alive), return_exceptions=True)
            await senders
            total = 20 * len(alive)
            await asyncio.gather(*(c.wait_events(room, lambda evs: sum(
                e["type"] == "message" and e["text"].startswith("after:") for e in evs) >= total,
                timeout=8) for c in alive))
            order = check_total_order(alive, room)
            after = [e for e in order if e["type"] == "message" and e["text"].startswith("after:")]
            assert len(after) == total, f"{len(after)} of {total} messages after the kill"
            for c in alive:
                mine = [e for e in c.events[room]
                        if e["type"] == "message" and e["text"].startswith("after:")]
                assert mine == after, f"{c.you}: messages after the kill differ"
            failures = [w for w in waits if isinstance(w, BaseException)]
            assert not failures, \
                f"the members of killed child {victim} ({sorted(doomed_names)}) did not leave " \
                f"within 8 s (no 'gone' leave events): {failures[0]}"
            assert max(waits) <= 5.0, f"the dead child's members left only after {max(waits):.1f}s"
            leaves = [e for e in order if is_event(e, "leave")
                      and e["name"] in doomed_names]
            assert len(leaves) == len(doomed_names), leaves
            assert len({e["seq"] for e in leaves}) == 1, leaves  # one gone record
            # the status page forgets the dead child's connections too
            deadline = time.time() + 5
            while True:
                st = status_json(a.port)
                if (st["apps"]["chat"]["open"], st["open"]) == (len(alive), len(alive)):
                    break
                assert time.time() < deadline, \
                    f"status after kill -9: chat open {st['apps']['chat']['open']}, " \
                    f"open {st['open']}, want {len(alive)}"
                await asyncio.sleep(0.1)
            # a newcomer does not see the dead members
            late = await connect_retry(a, "late")
            clients.append(late)
            _, _, p = await late.join(room)
            assert not doomed_names & set(p["members"]), f"dead members in presence: {p['members']}"
            assert set(p["members"]) == {c.names[room] for c in alive} | {"late"}, p["members"]
            return victim
        victim = run_with_clients(go, timeout=28)
        assert not crashes(a, except_pids=(victim,)), crashes(a, except_pids=(victim,))


@time_limit(40)
def test_graceful_restart_resume_and_history_survive():
    room = uniq("restart")
    with Apache(extra_conf=FAST, mpm="event", children=2, threads=10) as a:
        async def go(clients):
            for i in range(6):
                clients.append(await connect(a, f"g{i}"))
            before = await exchange(clients, room, per_client=2)  # the whole room so far
            names = [c.names[room] for c in clients]
            closes = [asyncio.ensure_future(c.wait_closed(timeout=10)) for c in clients]
            await asyncio.get_running_loop().run_in_executor(None, a.graceful)
            codes = await asyncio.gather(*closes)
            assert [code for code, _ in codes] == [1001] * 6, f"graceful restart closes: {codes}"
            since = {n: c.events[room][-1]["seq"] for n, c in zip(names, clients)}
            # published while everybody is away
            seqs = []
            deadline = time.time() + 8
            while len(seqs) < 5:
                try:
                    st, body = publish(a.port, {"room": room, "text": f"while-away-{len(seqs)}",
                                                "from": "ci"})
                except OSError:
                    st, body = 0, None
                if st == 202:
                    seqs.append(body["seq"])
                else:
                    assert time.time() < deadline, f"publish after graceful: {st} {body}"
                    await asyncio.sleep(0.1)
            assert seqs == sorted(seqs)
            back = []
            for n in names:
                back.append(await connect_retry(a, n))
            clients.extend(back)
            for n, c in zip(names, back):
                h, j, _ = await c.join(room, since=since[n])
                assert h["complete"] is True, h
                got = h["messages"]
                texts = [e.get("text") for e in got if e["type"] == "message"]
                assert texts == [f"while-away-{k}" for k in range(5)], f"{n}: missed {texts}"
                assert [e["seq"] for e in got if e["type"] == "message"] == seqs
                assert all(e["seq"] > since[n] for e in got), f"{n}: replayed what it had seen"
            # the plain history (a new client) holds everything, from before the restart too
            ref = await connect_retry(a, "ref")
            clients.append(ref)
            h, _, _ = await ref.join(room)
            assert h["complete"] is True, h
            hist = h["messages"]
            assert hist[:len(before)] == before, \
                "history from before the restart is gone or changed:\n" \
                f"before {[e['seq'] for e in before]}\nnow    {[e['seq'] for e in hist]}\n" \
                f"{a.error_log()[-2000:]}"
            for n, c in zip(names, back):
                own = c.events[room][0]["seq"]  # its rejoin
                want = [e for e in hist if since[n] < e["seq"] < own]
                assert c.histories[room][0]["messages"] == want, \
                    f"{n}: resume after restart is not exactly the missed events:\n" \
                    f"got  {[e['seq'] for e in c.histories[room][0]['messages']]}\n" \
                    f"want {[e['seq'] for e in want]}"
            leaves = {e["name"] for e in hist if is_event(e, "leave")}
            assert set(names) <= leaves, f"the 1001-closed members did not leave: {leaves}"
            # and the room works across the new generation of children
            await back[0].message(room, "new generation")
            for c in back[1:]:
                await c.wait_events(room, lambda evs: evs[-1].get("text") == "new generation")
        run_with_clients(go, timeout=35)
        assert not crashes(a), crashes(a)


@time_limit(60)
def test_late_child_learns_members_it_never_saw_join():
    """A child that starts after the bus ring wrapped never saw the joins of
    members who have been silent since: it asks (sync), the other children
    answer (present), and its clients' presence lists include them."""
    extra = FAST + "WSBridgeBusSize 64K\nMinSpareThreads 1\n"
    room = uniq("latechild")
    with Apache(extra_conf=extra, mpm="event", children=1, threads=4, max_workers=8) as a:
        async def go(clients):
            stage("the silent member joins in the first child")
            silent = await connect(a, "silent")
            clients.append(silent)
            await silent.join(room)
            stage("wrapping the 64K bus ring")
            talker = await connect(a, "talker")
            clients.append(talker)
            noise = uniq("noise")
            await talker.join(noise)
            for chunk in range(10):  # ~200 KB of records, in steps the hub keeps up with
                for k in range(40):
                    await talker.message(noise, f"{chunk}-{k}-" + "n" * 400)
                await talker.wait_events(noise, lambda evs: n_messages(evs) >= 40 * (chunk + 1),
                                         timeout=10)
            first = status_json(a.port)["bus"]["first_seq"]
            assert first > 1, f"the ring did not wrap (first_seq {first})"
            stage("filling the first child so a second one starts")
            for i in range(2):
                clients.append(await connect(a, f"fill{i}"))
            assert len({c.pid for c in clients}) == 1, "the first child did not take them all"
            stage("a client in the new child")
            late = await ChatClient.connect(a.port, path="/ws/fast", name="late", timeout=15)
            clients.append(late)
            assert late.pid != silent.pid, "the late client was not served by a new child"
            _, _, presence = await late.join(room)
            if "silent" not in presence["members"]:  # the answers came after the join
                await late.next(lambda f: f.get("type") == "presence" and f.get("room") == room and
                                "silent" in f.get("members", []), timeout=10,
                                what="a presence list with the silent member")
            await silent.message(room, "still here")
            await late.wait_events(room, lambda evs: any(e.get("text") == "still here" and
                                                         e.get("from") == "silent" for e in evs))
        run_with_clients(go, timeout=55)
        assert "asking every child for its room members" in a.error_log()
        assert not crashes(a), crashes(a)
