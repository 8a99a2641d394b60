#!/usr/bin/env python3
"""The compact tables of a scenario run (the README's Benchmarks section), from results.csv.

    python3 bench/summary.py docs/bench/results.csv

Queue cells: items/s of the peer and, in parentheses, shuttle's items/s divided by the peer's
(above 1: shuttle is faster). Pipe cells: MB/s for 64 KiB. Latency: ping-pong round trip p50 /
p99 in microseconds, ratio peer/shuttle on the p50. "failed" / "skipped" where the peer has no
figure; "-" where it does not take part.
"""
import csv
import sys


def human(value):
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.{2 if suffix != 'k' else 0}f}{suffix}"
    return f"{value:.0f}"


def ratio_text(ratio):
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2f}×"


def main(path):
    rows = list(csv.DictReader(open(path)))

    def find(peer, scenario, producers, capacity, payload):
        for row in rows:
            if (row["peer"] == peer and row["scenario"] == scenario
                    and int(row["producers"]) == producers and int(row["capacity"]) == capacity
                    and int(row["payload"]) == payload):
                return row
        return None

    def rate_cell(peer, where, field="items_per_s", scale=1.0, fmt=human, invert=False):
        row, ref = find(peer, *where), find("shuttle", *where)
        if row is None:
            return "-"
        if row["status"] != "ok":
            return row["status"]
        value = float(row[field]) * scale
        text = fmt(value)
        if peer != "shuttle" and ref is not None and ref["status"] == "ok" and value > 0:
            reference = float(ref[field]) * scale
            ratio = value / reference if invert else reference / value
            text += f" ({ratio_text(ratio)})"
        return text

    peers = []
    for row in rows:
        if row["scenario"] != "notes-tickets" and row["peer"] not in peers:
            peers.append(row["peer"])

    queue_columns = [
        ("1×1 8 B cap 10", ("notes-1x1", 1, 10, 8)),
        ("1×1 8 B cap 1024", ("sweep", 1, 1024, 8)),
        ("1×1 1 KiB cap 10", ("sweep", 1, 10, 1024)),
        ("3×2 8 B cap 10", ("notes-3x2", 3, 10, 8)),
        ("3×2 1 KiB cap 10", ("notes-3x2", 3, 10, 1024)),
        ("8×8 8 B cap 10", ("sweep", 8, 10, 8)),
        ("8×8 8 B cap 1024", ("sweep", 8, 1024, 8)),
        ("8×8 1 KiB cap 10", ("sweep", 8, 10, 1024)),
    ]
    print("| items/s (shuttle/peer) | " + " | ".join(c[0] for c in queue_columns) + " |")
    print("|---|" + "---:|" * len(queue_columns))
    for peer in peers:
        if peer == "shuttle-pipe":
            continue
        print(f"| {peer} | " + " | ".join(rate_cell(peer, w) for _, w in queue_columns) + " |")
    print()
    print("| peer | notes-pipe 8 B msgs/s | notes-pipe 64 KiB MB/s | ping-pong p50 / p99 µs "
          "(peer/shuttle p50) | idle consumer, % of a core |")
    print("|---|---:|---:|---:|---:|")
    for peer in peers:
        pipe8 = rate_cell(peer, ("notes-pipe", 1, 64, 8))
        pipe64 = rate_cell(peer, ("notes-pipe", 1, 64, 65536), field="mb_per_s",
                           fmt=lambda v: f"{v:,.0f}")
        ping = find(peer, "ping-pong", 1, 10, 8)
        ref = find("shuttle", "ping-pong", 1, 10, 8)
        if ping is None:
            latency = "-"
        elif ping["status"] != "ok":
            latency = ping["status"]
        else:
            latency = f"{float(ping['p50_us']):.2f} / {float(ping['p99_us']):.2f}"
            if peer != "shuttle" and ref is not None and ref["status"] == "ok":
                latency += f" ({ratio_text(float(ping['p50_us']) / float(ref['p50_us']))})"
        idle = find(peer, "idle-cpu", 1, 10, 8)
        if idle is None:
            idle_text = "-"
        elif idle["status"] != "ok":
            idle_text = idle["status"]
        else:
            idle_text = f"{float(idle['idle_cpu_percent']):.3f}"
        print(f"| {peer} | {pipe8} | {pipe64} | {latency} | {idle_text} |")
    print()
    print("| notes-tickets, 10 processes | tickets/s (shuttle/peer) |")
    print("|---|---:|")
    for row in rows:
        if row["scenario"] == "notes-tickets":
            print(f"| {row['peer']} | "
                  f"{rate_cell(row['peer'], ('notes-tickets', 10, 0, 8))} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/bench/results.csv")
