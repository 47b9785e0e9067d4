#!/usr/bin/env python3
"""bench/cuda/ncu_steps.py — where one forward step's GPU time goes, kernel by kernel.

Reads `ncu --csv --page raw --metrics gpu__time_duration.sum,dram__bytes_read.sum`
output (every kernel of a realm_bench_cuda run, profiled one at a time, so
durations carry no launch gaps; ncu flushes the caches before each kernel,
so small kernels look slower than in the real run), cuts it into steps at each embedding lookup
(k_get_rows starts every forward pass), and prints for the last complete step
the time and DRAM bytes read by each kernel, summed by kernel name, with the
achieved read bandwidth. Comparing the total with the step's wall time
(BENCH step_ms) separates kernel time from launch gaps. --largest takes the
complete step with the most kernel time instead (a prefill pass among
decode steps).
    usage: ncu_steps.py NCU.csv [STEP_WALL_MS] [--largest]
"""
import csv
import re
import sys


def short(name):
    """'void k_mmv_s<14, 1>(const unsigned char *, ...)' -> 'k_mmv_s<14, 1>'"""
    return re.sub(r"^void ", "", name).split("(")[0][:70]


def main():
    largest = "--largest" in sys.argv
    argv = [a for a in sys.argv if a != "--largest"]
    rows = list(csv.reader(open(argv[1], errors="replace")))
    head = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
    cols = rows[head]
    kn, td = cols.index("Kernel Name"), cols.index("gpu__time_duration.sum")
    db = cols.index("dram__bytes_read.sum") if "dram__bytes_read.sum" in cols else None
    units = rows[head + 1]
    to_us = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
    to_b = {"byte": 1, "Kbyte": 1e3, "KB": 1e3, "Mbyte": 1e6, "MB": 1e6, "Gbyte": 1e9, "GB": 1e9}
    tscale = to_us.get(units[td], 1.0)
    bscale = to_b.get(units[db], 1) if db is not None else 0
    ks = []
    for r in rows[head + 2:]:
        if len(r) <= td or not r[td]:
            continue
        b = float(r[db].replace(",", "")) * bscale if db is not None and r[db] else 0.0
        ks.append((short(r[kn]), float(r[td].replace(",", "")) * tscale, b))
    starts = [i for i, k in enumerate(ks) if "get_rows" in k[0]]
    if len(starts) < 2:
        sys.exit("fewer than two steps in the profile")
    steps = [ks[a:b] for a, b in zip(starts, starts[1:])]
    step = max(steps, key=lambda st: sum(k[1] for k in st)) if largest else steps[-1]
    agg = {}
    for name, us, b in step:
        a = agg.setdefault(name, [0, 0.0, 0.0])
        a[0] += 1
        a[1] += us
        a[2] += b
    tot = sum(a[1] for a in agg.values())
    totb = sum(a[2] for a in agg.values())
    print(f"one step: {len(step)} kernels, {tot:.0f} us of kernel time, "
          f"{totb / 1e6:.0f} MB read ({totb / tot / 1e3:.0f} GB/s over kernel time)")
    if len(argv) > 2:
        wall = float(argv[2]) * 1e3
        gap = wall - tot
        print(f"step wall {wall:.0f} us: kernels alone {100 * tot / wall:.0f}% of it; " +
              (f"{gap:.0f} us of launch gaps" if gap >= 0 else
               f"{-gap:.0f} us more than the wall (ncu starts each kernel with cold "
               f"caches; the real run overlaps kernels through PDL)"))
    print(f"{'kernel':70} {'n':>4} {'us':>8} {'%':>5} {'us/op':>7} {'GB/s':>6}")
    for name, (n, us, b) in sorted(agg.items(), key=lambda x: -x[1][1]):
        print(f"{name:70} {n:4d} {us:8.1f} {100 * us / tot:5.1f} {us / n:7.2f} {b / us / 1e3:6.0f}")


main()
