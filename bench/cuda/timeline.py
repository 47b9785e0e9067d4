#!/usr/bin/env python3
"""bench/cuda/timeline.py — where a decode step's time goes, kernel by kernel,
in the real pipeline (PDL overlaps and all), from timeline_inject.c's CSV.

    timeline.py timeline.csv [--first-kernel k_get_rows] [--skip 0.25]

A step starts at each launch of --first-kernel on the main stream (the pass's
first op). Steps after the first --skip share are summed up. For each
kernel of a step, in launch order on the main stream:
  dur   its own span (first block's start to last block's end),
  lead  how long it started before the kernel ahead of it ended (PDL: its
        blocks were resident and doing their pre-wait work),
  adds  end minus the end of the kernel ahead (or its own start, where the
        GPU sat idle between them waiting for the host): what it adds.
The adds of a step and its idle gaps sum to its span. Kernels are grouped
by name and grid (a mat-vec's instances differ in grid: q/k/v, o, gate/up,
down); the table gives per group the launches a step and the medians, and
the groups' share of the step. Then the step's repeating layer (its period
found from the kernel names): each position's kernels with their median
adds, and what a layer adds. Kernels on other streams (the L2 prefetch) are
counted apart.
"""
import argparse
import collections
import csv
import re
import shutil
import statistics
import subprocess
import sys


def demangle(names):
    """c++filt where it exists; else the mangled names"""
    if not shutil.which("c++filt"):
        return {n: n for n in names}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout
    return dict(zip(names, out.splitlines()))


def short(name):
    """void k_mmv_ring<(realm_type)12, (realm_type)14, 4, 1, true>(mms_set, ...) ->
    k_mmv_ring<12,14,4,1,true>"""
    s = re.sub(r"\(realm_type\)", "", name)
    s = re.sub(r"^void\s+", "", s).split("(", 1)[0]
    return re.sub(r"\s+", "", s)


def layer_period(keys):
    """the smallest P at which the step's kernel names repeat (the layer's
    kernels), 90% of positions alike; names without their template
    arguments, as a layer's matrices may differ in type (Q4_K_M's v and
    down are Q6_K in some layers)"""
    keys = [k.split("<", 1)[0] for k in keys]
    n = len(keys)
    for p in range(2, n // 3 + 1):
        body = range(1, n - p - 1)
        if sum(keys[i] == keys[i + p] for i in body) >= 0.9 * len(body):
            return p
    return None


def per_layer(steps):
    """each position of the repeating layer, by kernel: launches and median
    adds; a layer's total (positions taken from the step's second kernel,
    so where the cycle starts is arbitrary, its sum is not)"""
    keys = [k["key"] for k in steps[0]]
    p = layer_period(keys)
    if not p:
        return
    n_layers = (len(keys) - 2) // p
    pos = collections.defaultdict(list)
    for st in steps:
        prev_end = st[0]["start"]
        for i, k in enumerate(st):
            if 1 <= i < 1 + p * n_layers:
                pos[((i - 1) % p, k["key"], k["grid"])].append(
                    (k["end"] - max(prev_end, k["start"])) / 1e3)
            prev_end = max(prev_end, k["end"])
    print(f"a layer: {p} kernels, {n_layers} layers a step (median adds by position)")
    total = 0.0
    for (i, key, grid), v in sorted(pos.items()):
        share = len(v) / (len(steps) * n_layers)
        total += share * statistics.median(v)
        print(f"  {i:3} {key[:56]:56} {grid:>12} {share:5.2f} {statistics.median(v):7.2f}")
    print(f"  a layer adds {total:.1f} us")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--first-kernel", default="k_get_rows")
    ap.add_argument("--skip", type=float, default=0.25)
    a = ap.parse_args()
    rows = []
    try:
        with open(a.csv) as f:
            for line, r in enumerate(csv.reader(f), 1):
                try:
                    rows.append({"start": int(r[0]), "end": int(r[1]), "stream": r[2],
                                 "grid": r[3], "block": r[4], "dyn": int(r[5]), "shx": int(r[6]),
                                 "regs": int(r[7]), "name": ",".join(r[8:])})
                except (ValueError, IndexError):
                    sys.exit(f"timeline: {a.csv} line {line}: not start,end,stream,grid,"
                             "block,dyn_shared,shared_executed,regs,name")
    except OSError as e:
        sys.exit(f"timeline: {e}")
    if not rows:
        sys.exit("timeline: no kernels")
    names = demangle(sorted({r["name"] for r in rows}))
    for r in rows:
        r["key"] = short(names[r["name"]])
    rows.sort(key=lambda r: r["start"])
    firsts = [r for r in rows if r["key"].startswith(a.first_kernel)]
    if not firsts:
        sys.exit(f"timeline: no {a.first_kernel}")
    main_stream = collections.Counter(r["stream"] for r in firsts).most_common(1)[0][0]
    chain = [r for r in rows if r["stream"] == main_stream]
    side = [r for r in rows if r["stream"] != main_stream]
    starts = [i for i, r in enumerate(chain) if r["key"].startswith(a.first_kernel)]
    steps = [chain[s:e] for s, e in zip(starts, starts[1:])]
    steps = steps[int(len(steps) * a.skip):]
    if not steps:
        sys.exit("timeline: fewer than two steps")
    spans, idle = [], []
    groups = collections.defaultdict(lambda: {"n": 0, "dur": [], "lead": [], "adds": [],
                                              "shx": set(), "regs": set()})
    for st in steps:
        spans.append((st[-1]["end"] - st[0]["start"]) / 1e3)
        prev_end, gap = st[0]["start"], 0.0
        for k in st:
            g = groups[(k["key"], k["grid"])]
            g["n"] += 1
            g["dur"].append((k["end"] - k["start"]) / 1e3)
            g["lead"].append((prev_end - k["start"]) / 1e3)
            # a kernel that started after the one ahead ended waited for the
            # host (a segment's launch; tracing slows the host): counted apart
            gap += max(0.0, (k["start"] - prev_end) / 1e3)
            g["adds"].append((k["end"] - max(prev_end, k["start"])) / 1e3)
            g["shx"].add(k["shx"])
            g["regs"].add(k["regs"])
            prev_end = max(prev_end, k["end"])
        idle.append(gap)
    ns = len(steps)
    span = statistics.median(spans)
    busy = statistics.median(s - i for s, i in zip(spans, idle))
    print(f"{ns} steps, {len(steps[0])} kernels a step on stream {main_stream}; step span median "
          f"{span:.1f} us (min {min(spans):.1f}, max {max(spans):.1f}); less the GPU's idle "
          f"waits for the host (median {statistics.median(idle):.1f} us): {busy:.1f} us")
    print(f"{'kernel':60} {'grid':>12} {'/step':>5} {'dur':>7} {'lead':>7} {'adds':>7} "
          f"{'adds/step':>9} {'share':>6} {'shmem':>7} regs")
    print("(medians; adds/step = median adds x launches a step; share of the step less idle)")
    tot = 0.0
    for (key, grid), g in sorted(groups.items(),
                                 key=lambda kv: -statistics.median(kv[1]["adds"]) * kv[1]["n"]):
        per = statistics.median(g["adds"]) * g["n"] / ns
        tot += per
        print(f"{key[:60]:60} {grid:>12} {g['n'] / ns:5.1f} {statistics.median(g['dur']):7.2f} "
              f"{statistics.median(g['lead']):7.2f} {statistics.median(g['adds']):7.2f} "
              f"{per:9.1f} {100 * per / busy:5.1f}% {','.join(str(s // 1024) + 'K' for s in sorted(g['shx'])):>7} "
              f"{','.join(map(str, sorted(g['regs'])))}")
    print(f"{'sum of adds/step':60} {tot:62.1f}")
    per_layer(steps)
    if side:
        d = collections.defaultdict(list)
        for r in side:
            d[r["key"]].append((r["end"] - r["start"]) / 1e3)
        for key, v in d.items():
            print(f"other streams: {key[:60]} {len(v)} launches, median {statistics.median(v):.2f} us")


if __name__ == "__main__":
    main()
