#!/usr/bin/env python3
"""Where a server's resident memory is, by kind of mapping, summed over a
process tree (docs/benchmark.md, "Where the KiB per connection go").

    smaps_breakdown.py snap PIDFILE OUT.json    one snapshot of the tree
    smaps_breakdown.py diff A.json B.json N     (B - A) / N per kind, in KiB

Kinds (from /proc/PID/smaps of every process under the pid file's one):
  stack      thread stacks: private anonymous rw mappings right above a
             PROT_NONE guard page (glibc's pthread stacks), plus [stack]
  heap       the brk heap ([heap]): the main thread's malloc arena
  arena      glibc's per-thread malloc arenas: anonymous rw mappings inside
             a 64 MiB-aligned reservation (the rest of which is ---p)
  anon       other private anonymous memory (large malloc()s go to mmap,
             APR's allocator if it uses mmap, ...)
  shm        shared mappings (the bus, the scoreboard, the status slots)
  file       file-backed pages (the binaries and libraries)
Rss is what each process has resident (shared pages once per process),
Pss splits shared pages between the processes that map them.
"""
import json
import os
import re
import sys

HEAD = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$")
ARENA_ALIGN = 64 << 20


def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def mappings(pid):
    maps, cur = [], None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                m = HEAD.match(line)
                if m:
                    cur = {"lo": int(m.group(1), 16), "hi": int(m.group(2), 16), "perm": m.group(3),
                           "inode": int(m.group(4)), "name": m.group(5).strip(), "Rss": 0, "Pss": 0}
                    maps.append(cur)
                elif cur is not None:
                    k, _, v = line.partition(":")
                    if k in ("Rss", "Pss"):
                        cur[k] = int(v.split()[0])
    except OSError:
        pass
    return maps


def classify(maps):
    kinds = {}
    prev = None
    for m in maps:
        name, perm = m["name"], m["perm"]
        if name == "[heap]":
            k = "heap"
        elif name == "[stack]":
            k = "stack"
        elif name.startswith("[") or (m["inode"] and name):
            k = "file" if not name.startswith("[") else "other"
        elif perm[3] == "s":
            k = "shm"
        elif perm.startswith("rw"):
            guard_below = prev is not None and prev["hi"] == m["lo"] and prev["perm"].startswith("---") \
                and prev["hi"] - prev["lo"] <= 64 << 10
            in_arena = (m["lo"] & (ARENA_ALIGN - 1)) == 0 or (
                prev is not None and prev["hi"] == m["lo"] and prev["perm"].startswith("rw") and prev.get("k") == "arena")
            if in_arena and not guard_below:
                k = "arena"
            elif guard_below:
                k = "stack"
            else:
                k = "anon"
        else:
            k = "other"
        m["k"] = k
        d = kinds.setdefault(k, {"Rss": 0, "Pss": 0, "maps": 0})
        d["Rss"] += m["Rss"]
        d["Pss"] += m["Pss"]
        d["maps"] += 1
        prev = m
    return kinds


def snap(pidfile, out):
    with open(pidfile) as f:
        root = int(f.read().split()[0])
    procs = {}
    for p in tree(root):
        procs[p] = classify(mappings(p))
    total = {}
    for kinds in procs.values():
        for k, v in kinds.items():
            t = total.setdefault(k, {"Rss": 0, "Pss": 0, "maps": 0})
            for x in t:
                t[x] += v[x]
    with open(out, "w") as f:
        json.dump({"procs": procs, "total": total}, f)
    print(json.dumps(total))


def diff(a, b, n):
    with open(a) as f:
        A = json.load(f)["total"]
    with open(b) as f:
        B = json.load(f)["total"]
    n = float(n)
    rows = []
    for k in sorted(set(A) | set(B)):
        x, y = A.get(k, {}), B.get(k, {})
        rows.append((k, (y.get("Rss", 0) - x.get("Rss", 0)) / n, (y.get("Pss", 0) - x.get("Pss", 0)) / n,
                     y.get("maps", 0) - x.get("maps", 0)))
    print(f"{'kind':<8}{'KiB/conn Rss':>14}{'KiB/conn Pss':>14}{'+maps':>8}")
    for k, r, p, m in rows:
        print(f"{k:<8}{r:>14.2f}{p:>14.2f}{m:>8}")
    print(f"{'total':<8}{sum(r[1] for r in rows):>14.2f}{sum(r[2] for r in rows):>14.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "snap":
        snap(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
