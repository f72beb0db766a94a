"""Checks a chaos run from the clients' logs (format: chaos_client.py).

Sender side: a message the user sent (pressed Enter) is acknowledged or
reported failed; one that is neither at the end is LOST. A user's
acknowledged messages carry increasing seqs in the order they were sent.

Published: a message text found under two different (epoch, seq) anywhere
was published twice: DUPLICATED (each extra copy counts).

Receiver side, per client and bus epoch (the shm bus starts again from 1
after a hard stop; the Redis bus never should): the client must have
received every published message of its room after its first join, once,
with seqs increasing in arrival order. A message it did not receive is
excused only by
  - a history answer with complete:false whose gap covers its seq
    (counted as a history gap), or
  - a restart of the bus itself: messages of the old epoch after the last
    seq the client saw there, first seen by anybody at most
    RESTART_GRACE_MS before the stop began (or before the client's last
    connection to the old bus ended, if it had none left at the stop: it
    was reconnecting, e.g. refused with 503, when the bus went), when the
    client was told: its
    first join on the new bus was answered complete:false (the client sent
    the old bus's id with its since) or with a join seq not above its since
    (counted as a restart gap; the shm bus keeps nothing across a stop);
otherwise it is a LOST delivery. A first join on a restarted bus answered
complete:true with a join seq above the client's since is the silent trap
bus ids close (docs/reliability.md section 2): the new bus's events up to
since and the old bus's tail are then lost deliveries. A second copy of one
seq is a DUPLICATED delivery.
"""
import collections
import re

PARENT_GROWTH_LIMIT_KB = 16 * 1024
# A message first seen this long before a hard stop began had time to reach
# every member: missing it is not the stop's doing.
RESTART_GRACE_MS = 3000


def check(run, info, error_logs):
    clients = run.clients
    problems = []
    r = {"run": run.kind, "clients": len(clients), "seconds": round(run.seconds),
         "settled": info["settled"], "converged": info["converged"]}

    # --- published copies -------------------------------------------------
    owner = {}
    for c in clients:
        for m in c.msgs:
            owner[m.text] = (c, m)
    copies = collections.defaultdict(set)       # text -> {(epoch, seq)}
    room_msgs = collections.defaultdict(dict)   # (room, epoch) -> {seq: text}
    for c in clients:
        for e in c.log:
            if e[0] == "e" and e[3] == "m" and e[4] in owner:
                copies[e[4]].add((e[1], e[2]))
                room_msgs[(c.room, e[1])][e[2]] = e[4]
    first_seen = {}                             # text -> earliest arrival anywhere (ms)
    for c in clients:
        for e in c.log:
            if e[0] == "e" and e[3] == "m" and len(e) > 6:
                first_seen[e[4]] = min(first_seen.get(e[4], e[6]), e[6])
    stop_ms = getattr(run, "stop_ms", {})
    dup_published = sum(len(s) - 1 for s in copies.values())
    for text, s in copies.items():
        if len(s) > 1 and len(problems) < 20:
            problems.append(f"{text} published {len(s)} times: {sorted(s)}")

    # --- sender side ------------------------------------------------------
    sent = acked = failed = pending = failed_published = acked_after_fail = sender_order = 0
    lost_msgs = []
    for c in clients:
        prev = None
        for m in c.msgs:
            sent += 1
            if m.state == "acked":
                acked += 1
                acked_after_fail += m.acked_after_fail
                key = (m.epoch, m.seq)
                if prev is not None and key <= prev:
                    sender_order += 1
                    if len(problems) < 40:
                        problems.append(f"{m.text} acked at {key} after the user's previous at {prev}")
                prev = key
            elif m.state == "failed":
                failed += 1
                failed_published += m.text in copies
            else:
                pending += 1
                lost_msgs.append(m.text)
    if lost_msgs:
        problems.append(f"{len(lost_msgs)} messages neither acknowledged nor failed: {lost_msgs[:10]}")

    # --- receiver side ----------------------------------------------------
    final_epoch = run.epoch
    final_seq = {}   # room -> the last seq (any event) of the final epoch
    for c in clients:
        for e in c.log:
            if e[0] == "e" and e[1] == final_epoch and e[2] is not None:
                final_seq[c.room] = max(final_seq.get(c.room, 0), e[2])
    delivered = expected = lost_deliveries = dup_deliveries = recv_order = 0
    hist_gaps = restart_gaps = hist_incomplete = resets = own_again = stale_since = 0
    lost_examples = []
    for c in clients:
        got = collections.Counter()        # (epoch, seq) of messages received
        last = {}                          # epoch -> largest seq seen
        start = {}                         # epoch -> membership starts after this seq
        excused = collections.defaultdict(list)   # epoch -> [(lo, hi)] open intervals
        stale = {}                         # epoch -> a since from the old bus, taken as new
        told = set()                       # old epochs whose end the client was told of
        prev_epoch = None
        fresh = False                      # the next join is the first on a restarted bus
        left = None                        # the epoch the client left when fresh
        away = {}                          # epoch -> when its last connection there ended
        for e in c.log:
            if e[0] == "drop":
                away[e[1]] = e[2]
            elif e[0] == "conn":
                away.pop(e[1], None)
                if prev_epoch is not None and e[1] != prev_epoch:
                    # until a join succeeds there (a connection can drop first)
                    if not fresh:
                        left = prev_epoch
                    fresh = True
                    start.setdefault(e[1], 0)  # a member across the bus restart
                prev_epoch = e[1]
            elif e[0] == "hist":
                _, epoch, since, complete, jseq, first = e[:6]
                if since is not None and jseq <= since:
                    resets += 1
                    if not fresh:
                        if len(problems) < 40:
                            problems.append(f"{c.name}: the bus seq went back (join {jseq} <= since {since}) "
                                            "without a restart of the bus")
                    else:
                        told.add(left)
                    since = None
                elif since is not None and fresh:
                    if complete:
                        # The first join on a restarted bus whose seq had
                        # already passed the client's since from the old
                        # bus, without a bus id: the server took since as
                        # its own and left out its events up to since, with
                        # complete:true.
                        stale[epoch] = since
                    else:
                        # The old bus's id came with since: the server
                        # ignored since and said so. The gap is from the
                        # new bus's start.
                        told.add(left)
                        since = None
                fresh = False
                start.setdefault(epoch, jseq)
                if not complete:
                    hist_incomplete += 1
                    excused[epoch].append((since or 0, first if first is not None else jseq))
            elif e[0] == "e":
                epoch, seq, kind, text, src = e[1], e[2], e[3], e[4], e[5]
                p = last.get(epoch)
                if kind == "m":
                    got[(epoch, seq)] += 1
                    om = owner.get(text)
                    if got[(epoch, seq)] > 1 and om and om[0] is c and om[1].sends > 1:
                        # the answer to a resend (cid): the original event
                        # again, to the sender only; a page drops it by seq
                        own_again += 1
                        continue
                    if got[(epoch, seq)] > 1:
                        dup_deliveries += 1
                        if len(problems) < 40:
                            problems.append(f"{c.name} received seq {seq} ({text}) twice")
                        continue
                if p is not None and seq < p:
                    mine = kind == "m" and text.startswith(c.name + ":")
                    if not mine:
                        recv_order += 1
                        if len(problems) < 40:
                            problems.append(f"{c.name} received seq {seq} ({text}, {src}) after {p}")
                last[epoch] = max(p or 0, seq)
        for (room, epoch), msgs in room_msgs.items():
            if room != c.room or epoch not in start:
                continue
            hi = final_seq.get(room, 0) if epoch == final_epoch else float("inf")
            for seq, text in msgs.items():
                if seq <= start[epoch] or seq > hi:
                    continue
                expected += 1
                if got[(epoch, seq)]:
                    delivered += 1
                elif any(lo < seq < top for lo, top in excused[epoch]):
                    hist_gaps += 1
                elif (epoch != final_epoch and seq > last.get(epoch, 0) and epoch in told and
                      first_seen.get(text, 0) >= min(stop_ms.get(epoch, 0),
                                                     away.get(epoch, float("inf"))) - RESTART_GRACE_MS):
                    restart_gaps += 1
                else:
                    lost_deliveries += 1
                    if (epoch in stale and seq <= stale[epoch]) or (
                            epoch != final_epoch and epoch not in told and seq > last.get(epoch, 0)):
                        stale_since += 1
                    if len(lost_examples) < 10:
                        lost_examples.append(f"{c.name} missed {text} (epoch {epoch}, seq {seq})")
    if lost_deliveries:
        why = ""
        if stale_since:
            why = (f" ({stale_since} of them around a join on a restarted shm bus that had already "
                   f"passed the client's since from the old bus, answered complete:true: the client "
                   f"sent no bus id or the server ignored it; see docs/reliability.md section 2)")
        problems.append(f"{lost_deliveries} deliveries missing without a complete:false or restart "
                        f"to explain them{why}: {lost_examples}")

    # --- hangs, crashes, memory -------------------------------------------
    stalls = [(c.name, *e[1:]) for c in clients for e in c.log if e[0] == "stall"]
    if stalls:
        problems.append(f"{len(stalls)} connections open but without any room event for "
                        f"10 s while the room talked (client, pid, ms, connection id, client port): {stalls[:10]}")
    if not info["settled"]:
        stuck = [f"{c.name}(connected={c.connected}, outbox={len(c.outbox)})"
                 for c in clients if not c.settled()]
        problems.append(f"{len(stuck)} clients did not settle (hang?): {stuck[:10]}")
    if not info["converged"]:
        behind = collections.defaultdict(list)
        for c in clients:
            behind[c.room].append((c.epoch, c.last_seq, c.connected))
        detail = {room: collections.Counter(v).most_common(3) for room, v in behind.items()}
        problems.append(f"rooms did not converge to one last seq: {detail}")
    crashes = []
    for text in error_logs:
        for line in text.splitlines():
            if ("exit signal" in line and "Killed" not in line) or "Segmentation" in line \
                    or "AH00060" in line or "AH02818" in line:
                crashes.append(line.strip()[:300])
    if crashes:
        problems.append(f"{len(crashes)} crash lines in the error logs: {crashes[:5]}")
    wsb_errors = collections.Counter()
    for text in error_logs:
        for line in text.splitlines():
            mm = re.search(r"\[wsbridge:(error|crit|alert|emerg)\]", line)
            if mm:
                wsb_errors[mm.group(1)] += 1
    rss = run.rss
    mem = []
    for i, end in enumerate(rss.get("end", [])):
        # The flatness baseline: the latest sample of the same parent (a
        # hard stop starts a new one).
        b = None
        for label in ("start", "after-hard-restart"):
            sample = rss.get(label, [])
            if i < len(sample) and sample[i]["parent"] == end["parent"]:
                b = sample[i]
        s0 = rss.get("start", [])[i] if i < len(rss.get("start", [])) else None
        mem.append({"server": i, "start": s0, "base": b, "end": end})
        if b and b["parent"] == end["parent"] and end["parent_kb"] - b["parent_kb"] > PARENT_GROWTH_LIMIT_KB:
            problems.append(f"server {i}: the parent grew from {b['parent_kb']} kB to {end['parent_kb']} kB")

    reconnects = sum(c.stats["reconnects"] for c in clients)
    errors = collections.Counter()
    for c in clients:
        errors.update(c.errors)
    r.update({
        "sent": sent, "acked": acked, "failed": failed, "failed_published": failed_published,
        "acked_after_fail": acked_after_fail, "lost_messages": pending,
        "expected_deliveries": expected, "delivered": delivered, "lost_deliveries": lost_deliveries,
        "duplicated": dup_published + dup_deliveries, "dup_published": dup_published,
        "dup_deliveries": dup_deliveries, "order_violations": sender_order + recv_order,
        "history_incomplete": hist_incomplete, "history_gaps": hist_gaps, "restart_gaps": restart_gaps,
        "seq_resets_seen": resets, "own_again": own_again, "stale_since": stale_since,
        "restarts": run.counts["restarts"], "kills": run.counts["kills"],
        "outages": run.counts["outages"], "redis_restarts": run.counts["redis_restarts"],
        "reconnects": reconnects, "resends": sum(c.stats["resends"] for c in clients),
        "ack_timeouts": sum(c.stats["ack_timeouts"] for c in clients),
        "unconfirmed": sum(c.stats.get("unconfirmed", 0) for c in clients),
        "retries": sum(c.stats["retries"] for c in clients),
        "stalls": len(stalls), "errors": dict(errors), "wsbridge_log_errors": dict(wsb_errors), "crashes": len(crashes),
        "memory": mem, "faults": run.faults, "problems": problems,
    })
    return r


COLUMNS = [("run", "run"), ("sent", "sent"), ("acked", "acked"), ("failed", "failed"),
           ("delivered", "delivered"), ("expected_deliveries", "expected"),
           ("lost", "lost"), ("duplicated", "dup"), ("order_violations", "order"),
           ("history_gaps", "hist gaps"), ("restart_gaps", "restart gaps"),
           ("restarts", "restarts"), ("kills", "kills"), ("outages", "outages"),
           ("reconnects", "reconnects")]


def _row(r):
    r = dict(r, lost=r["lost_messages"] + r["lost_deliveries"])
    return [str(r[k]) for k, _ in COLUMNS]


def _mem_lines(r):
    out = []
    for m in r["memory"]:
        s, e = m["start"], m["end"]
        if not s:
            continue
        line = (f"  [{r['run']}] server {m['server']}: parent (pid {s['parent']}) {s['parent_kb']} kB -> "
                f"(pid {e['parent']}) {e['parent_kb']} kB; {s['children']} children {s['children_kb']} kB "
                f"in all -> {e['children']} children {e['children_kb']} kB")
        if m["base"] and m["base"]["parent"] != s["parent"]:
            line += f" (after the hard restart: parent {m['base']['parent_kb']} kB)"
        out.append(line)
    return out


def table(results):
    heads = [h for _, h in COLUMNS]
    rows = [_row(r) for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    lines = [fmt.format(*heads)] + [fmt.format(*row) for row in rows]
    for r in results:
        lines.append(f"  [{r['run']}] lost = {r['lost_messages']} messages never acknowledged nor failed "
                     f"+ {r['lost_deliveries']} missing deliveries; dup = {r['dup_published']} published twice "
                     f"+ {r['dup_deliveries']} received twice; failed but published {r['failed_published']}; "
                     f"failed as unconfirmed when the bus restarted {r['unconfirmed']}; "
                     f"complete:false answers {r['history_incomplete']}; own message again after a resend "
                     f"{r['own_again']}; resends {r['resends']}, "
                     f"ack timeouts {r['ack_timeouts']}, retries {r['retries']}; redis restarts "
                     f"{r['redis_restarts']}; stalls {r['stalls']}; crashes {r['crashes']}; errors {r['errors']}; "
                     f"wsbridge log {r['wsbridge_log_errors']}")
        lines += _mem_lines(r)
    return "\n".join(lines)


def markdown_rows(results):
    heads = [h for _, h in COLUMNS]
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in results:
        out.append("| " + " | ".join(_row(r)) + " |")
    out.append("")
    out.append("Memory (VmRSS, start → end of the run):")
    out.append("")
    out += [f"- {line.strip()}" for r in results for line in _mem_lines(r)]
    verdict = [f"- {r['run']}: " + ("ok" if not r["problems"] else "; ".join(r["problems"][:3]))
               for r in results]
    out += ["", "Verdict:", ""] + verdict
    return "\n".join(out)
