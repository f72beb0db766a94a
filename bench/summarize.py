#!/usr/bin/env python3
"""Medians of the load generator's runs, for scripts/bench.sh and
scripts/bench-compare.sh.

    summarize.py RESULTS.jsonl SUMMARY.json [--meta JSON] [--baseline SERVER]

RESULTS holds one JSON line per run (the load generator's, tagged with
server, scenario and rep). Prints a table of medians per scenario and
server; with --baseline, also each figure's ratio baseline / other server,
and with two or more repetitions the same ratio taken per repetition
(median, lowest, highest: the pairs' spread).
Writes everything, runs included, to SUMMARY.
"""
import json
import statistics
import sys

# (key, label, higher_is_better) per load-generator mode.
FIGURES = {
    "broadcast": [
        ("delivered_per_sec", "delivered/s", True),
        ("delivery_ratio", "ratio", True),
        ("p50_ms", "p50 ms", False),
        ("p90_ms", "p90 ms", False),
        ("p99_ms", "p99 ms", False),
        ("max_ms", "max ms", False),
        ("server_cpu_us_per_msg", "srv us/msg", False),
        ("server_cpu_cores", "srv cores", None),
        ("client_cpu_cores", "cli cores", None),
    ],
    "echo": [
        ("delivered_per_sec", "round trips/s", True),
        ("p50_ms", "p50 ms", False),
        ("p99_ms", "p99 ms", False),
        ("server_cpu_us_per_msg", "srv us/rt", False),
        ("server_cpu_cores", "srv cores", None),
        ("client_cpu_cores", "cli cores", None),
    ],
    "connect": [
        ("held", "held", True),
        ("handshakes_per_sec", "handshakes/s", True),
        ("handshake_p99_ms", "hs p99 ms", False),
        ("server_cpu_us_per_handshake", "srv us/hs", False),
        ("kib_per_conn_rss", "KiB/conn RSS", False),
        ("kib_per_conn_pss", "KiB/conn PSS", False),
        ("server_rss_mib_before", "idle RSS MiB", False),
        ("server_rss_mib_after", "srv RSS MiB", False),
        ("settle_ms", "settle ms", False),
    ],
}


def flatten(run):
    r = dict(run)
    lat = run.get("latency_us") or {}
    for q in ("p50", "p90", "p99", "max"):
        if q in lat:
            r[q + "_ms"] = lat[q] / 1000.0
    hs = run.get("handshake_us") or {}
    if "p99" in hs:
        r["handshake_p99_ms"] = hs["p99"] / 1000.0
    if "server_rss_kib_after" in run:
        r["server_rss_mib_after"] = run["server_rss_kib_after"] / 1024.0
    if "server_rss_kib_before" in run:
        r["server_rss_mib_before"] = run["server_rss_kib_before"] / 1024.0
    errs = run.get("errors") or {}
    r["error_count"] = sum(v for v in errs.values() if isinstance(v, (int, float)))
    return r


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if v else "0"


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    results, out = args[0], args[1]
    meta, baseline = {}, None
    i = 2
    while i < len(args):
        if args[i] == "--meta":
            meta = json.loads(args[i + 1])
            i += 2
        elif args[i] == "--baseline":
            baseline = args[i + 1]
            i += 2
        else:
            sys.exit("unknown argument " + args[i])

    runs = []
    with open(results) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))

    scenarios, servers = [], []
    for r in runs:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
        if r["server"] not in servers:
            servers.append(r["server"])

    summary = {"meta": meta, "scenarios": {}}
    for sc in scenarios:
        entry = {}
        mode = None
        for srv in servers:
            rs = [flatten(r) for r in runs if r["scenario"] == sc and r["server"] == srv]
            if not rs:
                continue
            ok = [r for r in rs if not r.get("failed")]
            mode = mode or (ok[0]["mode"] if ok else None)
            med = {}
            for key, _, _ in FIGURES.get(mode, []):
                vals = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
                if vals:
                    med[key] = statistics.median(vals)
            med["errors"] = statistics.median([r["error_count"] for r in ok]) if ok else None
            entry[srv] = {"runs": len(rs), "failed": len(rs) - len(ok), "median": med, "runs_data": runs_of(sc, srv, runs)}
        summary["scenarios"][sc] = {"mode": mode, "servers": entry}

        # Table.
        figs = FIGURES.get(mode, [])
        tls = sorted({r["tls"] for r in runs if r["scenario"] == sc and r.get("tls")})
        over = f", over {' / '.join(tls)}" if tls else ""
        print(f"\n{sc} ({mode}{over}), medians of {max(e['runs'] for e in entry.values())} run(s):")
        if tls:
            summary["scenarios"][sc]["tls"] = tls
        head = f"  {'server':<22}" + "".join(f"{label:>15}" for _, label, _ in figs) + f"{'errors':>8}"
        print(head)
        for srv, e in entry.items():
            med = e["median"]
            row = f"  {srv:<22}" + "".join(f"{fmt(med.get(k)):>15}" for k, _, _ in figs)
            row += f"{fmt(med.get('errors')):>8}"
            if e["failed"]:
                row += f"  ({e['failed']} failed)"
            print(row)
        if baseline and baseline in entry:
            base = entry[baseline]["median"]
            ratios, paired = {}, {}
            for srv, e in entry.items():
                if srv == baseline:
                    continue
                r = {}
                for k, _, _ in figs:
                    a, b = base.get(k), e["median"].get(k)
                    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                        r[k] = round(a / b, 3)
                ratios[srv] = r
                row = f"  {baseline + '/' + srv:<22}" + "".join(f"{fmt(r.get(k)):>15}" for k, _, _ in figs)
                print(row)
                pr = paired_ratios(runs_of(sc, baseline, runs), runs_of(sc, srv, runs), [k for k, _, _ in figs])
                if pr:
                    paired.setdefault(srv, pr)
                    print(f"  {'  paired, median':<22}" + "".join(f"{fmt(pr[k]['median'] if k in pr else None):>15}" for k, _, _ in figs))
                    print(f"  {'  paired, lowest':<22}" + "".join(f"{fmt(pr[k]['min'] if k in pr else None):>15}" for k, _, _ in figs))
                    print(f"  {'  paired, highest':<22}" + "".join(f"{fmt(pr[k]['max'] if k in pr else None):>15}" for k, _, _ in figs))
            summary["scenarios"][sc]["ratios"] = ratios
            if paired:
                summary["scenarios"][sc]["ratios_paired"] = paired
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    def rounded(m):
        return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in m.items()}
    medians = {sc: {srv: rounded(e["median"]) for srv, e in v["servers"].items()} for sc, v in summary["scenarios"].items()}
    print("\nJSON (medians): " + json.dumps(medians, separators=(",", ":")))
    print(f"summary with every run: {out}")


def runs_of(sc, srv, runs):
    return [r for r in runs if r["scenario"] == sc and r["server"] == srv]


def paired_ratios(base_runs, other_runs, keys):
    """Per repetition, baseline / other for each figure, then the median,
    lowest and highest of those ratios. The servers run one after the
    other within a repetition, so a pair shares the machine's state of the
    moment: on a shared, drifting machine this spread says more than the
    ratio of two medians. Only with two or more repetitions in common."""
    base = {r["rep"]: flatten(r) for r in base_runs if not r.get("failed") and "rep" in r}
    other = {r["rep"]: flatten(r) for r in other_runs if not r.get("failed") and "rep" in r}
    reps = sorted(set(base) & set(other))
    if len(reps) < 2:
        return {}
    out = {}
    for k in keys:
        vals = [base[n][k] / other[n][k] for n in reps
                if isinstance(base[n].get(k), (int, float)) and isinstance(other[n].get(k), (int, float)) and other[n][k]]
        if len(vals) >= 2:
            out[k] = {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3),
                      "max": round(max(vals), 3), "n": len(vals)}
    return out


if __name__ == "__main__":
    main()
