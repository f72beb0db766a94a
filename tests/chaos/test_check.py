#!/usr/bin/python3
"""The chaos checker must be able to fail: hand-made client logs with one
fault each (a lost message, a missing delivery, a duplicate, a reordering)
and the cases it must excuse (complete:false, a restarted shm bus, a
resend's answer). Prints `N passed, N failed`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos_check import check  # noqa: E402
from chaos_client import Client, Msg  # noqa: E402


class FakeRun:
    def __init__(self, clients, epoch=0):
        self.kind, self.seconds, self.epoch = "fake", 1, epoch
        self.clients = clients
        self.counts = {"restarts": 0, "kills": 0, "outages": 0, "redis_restarts": 0}
        self.faults, self.rss = [], {}
        self.stop_ms = {0: 10000} if epoch else {}


class FakeClient:
    def __init__(self, name, room="r"):
        self.name, self.room = name, room
        self.log, self.msgs, self.outbox = [], [], []
        self.stats = {"reconnects": 0, "resends": 0, "ack_timeouts": 0, "retries": 0}
        self.errors = {}
        self.connected, self.epoch, self.last_seq = True, 0, None

    def settled(self):
        return True

    def sent(self, n, seq=None, epoch=0, state="acked", sends=1):
        m = Msg(n, f"{self.name}:{n}", f"{self.name}-{n}")
        m.state, m.seq, m.epoch, m.sends = state, seq, epoch, sends
        self.msgs.append(m)
        return m

    def conn(self, epoch=0, since=None, jseq=1, complete=True, first=None):
        self.log.append(["conn", epoch, 1, 1, since, 0])
        self.log.append(["hist", epoch, since, complete, jseq, first, 0])
        self.log.append(["e", epoch, jseq, "s", f"join:{self.name}", "l"])

    def ev(self, seq, text, epoch=0, src="l", t=9000):
        self.log.append(["e", epoch, seq, "m", text, src, t])


def two_clients():
    """a and b join (seqs 1, 2); a sends a:1 (3), b sends b:1 (4); both see both."""
    a, b = FakeClient("a"), FakeClient("b")
    a.conn(jseq=1)
    b.conn(jseq=2)
    a.log.append(["e", 0, 2, "s", "join:b", "l"])
    a.sent(1, 3)
    b.sent(1, 4)
    for c in (a, b):
        c.ev(3, "a:1")
        c.ev(4, "b:1")
    return a, b


def result(clients, epoch=0):
    return check(FakeRun(clients, epoch), {"settled": True, "converged": True}, [])


def case_clean():
    r = result(two_clients())
    assert not r["problems"], r["problems"]
    assert r["sent"] == 2 and r["delivered"] == 4 and r["expected_deliveries"] == 4, r


def case_pending_is_lost():
    a, b = two_clients()
    a.sent(2, state="pending")
    r = result([a, b])
    assert r["lost_messages"] == 1 and r["problems"], r


def case_failed_is_not_lost():
    a, b = two_clients()
    a.sent(2, state="failed")
    r = result([a, b])
    assert r["failed"] == 1 and not r["problems"], r


def case_missing_delivery():
    a, b = two_clients()
    b.log = [e for e in b.log if not (e[0] == "e" and e[2] == 3)]
    r = result([a, b])
    assert r["lost_deliveries"] == 1 and r["problems"], r


def case_received_twice():
    a, b = two_clients()
    b.ev(4, "b:1")
    r = result([a, b])
    assert r["dup_deliveries"] == 1 and r["problems"], r


def case_published_twice():
    a, b = two_clients()
    for c in (a, b):
        c.ev(5, "a:1")
    r = result([a, b])
    assert r["dup_published"] == 1 and r["problems"], r


def case_out_of_order():
    a, b = two_clients()
    b.log[-2], b.log[-1] = b.log[-1], b.log[-2]
    r = result([a, b])
    assert r["order_violations"] >= 1 and r["problems"], r


def case_sender_order():
    a, b = two_clients()
    a.sent(2, 2)  # acked at a seq before the user's first message
    r = result([a, b])
    assert r["order_violations"] >= 1, r


def case_incomplete_history_excuses_the_gap():
    a, b = two_clients()
    # b was away from 4 to 7 and the history had lost 5..6: complete false
    for seq in (5, 6):
        a.sent(seq - 3, seq)
        a.ev(seq, f"a:{seq - 3}")
    b.conn(since=4, jseq=7, complete=False, first=None)
    a.log.append(["e", 0, 7, "s", "join:b", "l"])
    r = result([a, b])
    assert r["history_gaps"] == 2 and not r["problems"], r
    b.log[-2][3] = True  # the same gap with complete:true is a loss
    r = result([a, b])
    assert r["lost_deliveries"] == 2 and r["problems"], r


def case_bus_restart_excuses_the_old_epoch_tail():
    a, b = two_clients()
    a.sent(2, 5)
    a.ev(5, "a:2")        # b never saw seq 5 before the stop
    for c in (a, b):
        c.conn(epoch=1, since=5 if c is a else 4, jseq=1 if c is a else 2, first=None)
    a.log.append(["e", 1, 2, "s", "join:b", "l"])
    # b's first connection to the new server dropped before its join answered
    b.log.insert(b.log.index(["conn", 1, 1, 1, 4, 0]), ["conn", 1, 1, 1, 4, 0])
    b.sent(2, 3, epoch=1)
    for c in (a, b):
        c.ev(3, "b:2", epoch=1)
    r = result([a, b], epoch=1)
    assert r["restart_gaps"] == 1 and r["seq_resets_seen"] == 2 and not r["problems"], r
    a.log[[i for i, e in enumerate(a.log) if e[0] == "e" and e[2] == 5][0]][6] = 5000
    r = result([a, b], epoch=1)  # published 5 s before the stop: b should have had it
    assert r["lost_deliveries"] == 1 and r["problems"], r
    a.log[[i for i, e in enumerate(a.log) if e[0] == "e" and e[2] == 5][0]][6] = 9000
    r = result([a, b], epoch=0)  # the same logs without a bus restart: resets are faults
    assert r["problems"], r


def case_a_client_away_when_the_bus_went_is_excused_from_its_drop_on():
    # b's connection to the old bus ended at 5 s (say, refused with 503 on
    # every retry since), the bus stopped at 10 s; a:2 was published at 6 s.
    # b could not have had it, and the new bus told it (complete:false).
    a, b = two_clients()
    a.sent(2, 5)
    a.ev(5, "a:2", t=6000)
    for c in (a, b):
        c.conn(epoch=1, since=5 if c is a else 4, jseq=1 if c is a else 2, complete=False)
    r = result([a, b], epoch=1)
    assert r["lost_deliveries"] == 1, r   # open but silent at 6 s: a loss
    b.log.insert(b.log.index(["conn", 1, 1, 1, 4, 0]), ["drop", 0, 5000])
    r = result([a, b], epoch=1)
    assert r["restart_gaps"] == 1 and r["lost_deliveries"] == 0 and not r["problems"], r
    b.log.insert(b.log.index(["conn", 1, 1, 1, 4, 0]), ["conn", 0, 1, 1, 4, 5500])
    r = result([a, b], epoch=1)           # back on the old bus before a:2: a loss again
    assert r["lost_deliveries"] == 1, r


def case_stale_since_after_a_bus_restart_is_a_loss():
    a, b = two_clients()
    for c in (a, b):  # a restarts at 1; b comes back late with since 4, the new bus is at 6
        c.conn(epoch=1, since=4, jseq=1 if c is a else 6, first=None)
    for seq in (2, 3, 4, 5):
        a.sent(seq, seq, epoch=1)
        a.ev(seq, f"a:{seq}", epoch=1)
    b.ev(5, "a:5", epoch=1, src="h")
    a.log.append(["e", 1, 6, "s", "join:b", "l"])
    r = result([a, b], epoch=1)
    assert r["lost_deliveries"] == 3 and r["stale_since"] == 3 and r["problems"], r


def late_return_to_a_new_bus(complete):
    """b saw up to 4 of the old bus, missed its 5 (the stop took it); it comes
    back when the new bus is at 6 with since 4. a restarted at 1 and sent
    2..5 on the new bus."""
    a, b = two_clients()
    a.sent(2, 5)
    a.ev(5, "a:2")
    a.conn(epoch=1, since=5, jseq=1)
    b.conn(epoch=1, since=4, jseq=6, complete=complete, first=1 if not complete else 5)
    for seq in (2, 3, 4, 5):
        a.sent(seq + 1, seq, epoch=1)
        a.ev(seq, f"a:{seq + 1}", epoch=1)
    a.log.append(["e", 1, 6, "s", "join:b", "l"])
    return a, b


def case_foreign_bus_since_is_answered_incomplete_and_excused():
    # With the old bus's id next to since the server sends all it kept,
    # complete:false: b gets the new bus's 1..5, and the old bus's tail
    # it missed is a restart gap it was told of.
    a, b = late_return_to_a_new_bus(complete=False)
    b.log.insert(b.log.index(["e", 1, 6, "s", "join:b", "l"]), ["e", 1, 1, "s", "join:a", "h"])
    for seq in (2, 3, 4, 5):
        b.log.insert(b.log.index(["e", 1, 6, "s", "join:b", "l"]), ["e", 1, seq, "m", f"a:{seq + 1}", "h", 9000])
    r = result([a, b], epoch=1)
    assert r["restart_gaps"] == 1 and r["history_incomplete"] == 1 and r["stale_since"] == 0, r
    assert not r["problems"], r


def case_silent_join_on_a_new_bus_loses_both_ends():
    # The same return answered complete:true from 5 on (no bus id, the old
    # trap): the new bus's 2..4 and the old bus's 5 are lost, not excused.
    a, b = late_return_to_a_new_bus(complete=True)
    b.ev(5, "a:6", epoch=1, src="h")
    r = result([a, b], epoch=1)
    assert r["lost_deliveries"] == 4 and r["stale_since"] == 4 and r["restart_gaps"] == 0, r
    assert r["problems"], r


def case_stalled_connection():
    a, b = two_clients()
    b.log.append(["stall", 1234, 5000])
    r = result([a, b])
    assert r["stalls"] == 1 and r["problems"], r


def case_parent_memory_growth():
    def sample(pid, kb):
        return [{"parent": pid, "parent_kb": kb, "children": 4, "children_kb": 200000}]
    run = FakeRun(list(two_clients()))
    run.rss = {"start": sample(10, 5000), "end": sample(10, 5000 + 20 * 1024)}
    r = check(run, {"settled": True, "converged": True}, [])
    assert any("parent grew" in p for p in r["problems"]), r["problems"]
    # a new parent after a hard stop is measured from its own first sample
    run.rss = {"start": sample(10, 5000), "after-hard-restart": sample(11, 5000 + 19 * 1024),
               "end": sample(11, 5000 + 20 * 1024)}
    r = check(run, {"settled": True, "converged": True}, [])
    assert not r["problems"], r["problems"]


def case_resend_answer_is_not_a_duplicate():
    a, b = two_clients()
    a.msgs[0].sends = 2
    a.ev(3, "a:1")
    r = result([a, b])
    assert r["own_again"] == 1 and not r["problems"], r
    a.msgs[0].sends = 1   # without a resend it is a duplicate
    r = result([a, b])
    assert r["dup_deliveries"] == 1, r


def case_client_fails_what_it_sent_on_a_gone_bus():
    # The client's own rule (chaos_client.Client): a message sent on a bus
    # that a hard stop took away is reported failed, not sent again (the new
    # bus cannot know its cid); one never sent, or sent on this bus, stays.
    c = Client(None, 1, "r", [1], 1.0)
    c.bus = "aaaaaaaaaaaaaaaa"
    old, unsent = Msg(1, "u001:1", "u001-1"), Msg(2, "u001:2", "u001-2")
    old.sends, old.sent_bus = 1, c.bus
    c.msgs, c.outbox, c.sent_at = [old, unsent], [old, unsent], 1.0
    c.fail_sent_on_other_bus("aaaaaaaaaaaaaaaa")
    assert c.outbox == [old, unsent] and old.state == "pending", (old.state, c.outbox)
    c.fail_sent_on_other_bus(None)   # a server without bus ids: nothing to tell
    assert c.outbox == [old, unsent], c.outbox
    c.fail_sent_on_other_bus("bbbbbbbbbbbbbbbb")
    assert c.outbox == [unsent] and c.sent_at is None, (c.outbox, c.sent_at)
    assert (old.state, old.failed_why, unsent.state) == ("failed", "bus", "pending"), old.state
    assert c.stats["unconfirmed"] == 1, c.stats


def main():
    cases = [(k, v) for k, v in globals().items() if k.startswith("case_")]
    passed = failed = 0
    for name, fn in cases:
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {str(e)[:500]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
