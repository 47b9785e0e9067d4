#!/usr/bin/env python3
"""bench/cuda/ncu_table.py — one line per profiled launch from `ncu --csv --page raw`
with sections (device_run.sh profile with PROF_CSV=1): time, DRAM bytes and
throughput, cache hit rates, occupancy, issue rate, cycles per issued
instruction and the largest stall reasons (cycles per issued instruction
spent in each), so kernels of one step compare side by side.
    usage: ncu_table.py NCU.csv
"""
import csv
import re
import sys

COLS = [  # (header, metric, scale)
    ("us", "gpu__time_duration.sum", 1e-3),
    ("MB", "dram__bytes_read.sum", 1e-6),
    ("dram%", "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed", 1),
    ("L1hit", "l1tex__t_sector_hit_rate.pct", 1),
    ("L2hit", "lts__t_sector_hit_rate.pct", 1),
    ("occ%", "sm__warps_active.avg.pct_of_peak_sustained_active", 1),
    ("issue%", "smsp__issue_active.avg.pct_of_peak_sustained_active", 1),
    ("cpi", "smsp__average_warp_latency_per_inst_issued.ratio", 1),
    ("regs", "launch__registers_per_thread", 1),
    ("waves", "launch__waves_per_multiprocessor", 1),
]
STALL = re.compile(r"smsp__average_warps_issue_stalled_(\w+)_per_issue_active\.ratio$")


def num(s):
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


def main():
    rows = list(csv.reader(open(sys.argv[1], errors="replace")))
    head = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if head is None or head + 1 >= len(rows):
        sys.exit("ncu_table.py: no profiled launches in %s (ncu failed or timed out?)" % sys.argv[1])
    names, units = rows[head], rows[head + 1]
    col = {n: i for i, n in enumerate(names)}
    scale = {"nsecond": 1, "usecond": 1e3, "msecond": 1e6, "byte": 1, "Kbyte": 1e3,
             "Mbyte": 1e6, "Gbyte": 1e9}
    print("%-34s %-14s %s  top stalls (cycles per issue)" %
          ("kernel", "grid", " ".join("%7s" % h for h, _, _ in COLS)))
    for r in rows[head + 2:]:
        if len(r) != len(names):
            continue
        name = re.sub(r"^void ", "", r[col["Kernel Name"]]).split("(")[0]
        name = re.sub(r"\(int\)|\(realm_type\)", "", name)[:34]
        out = []
        for _, m, s in COLS:
            v = num(r[col[m]]) if m in col else None
            if v is not None and m in col:
                v *= scale.get(units[col[m]], 1) * s
            out.append("%7s" % ("-" if v is None else "%.1f" % v))
        stalls = []
        for i, n in enumerate(names):
            mm = STALL.match(n)
            if mm and num(r[i]) is not None:
                stalls.append((num(r[i]), mm.group(1)))
        stalls.sort(reverse=True)
        grid = r[col["Grid Size"]] if "Grid Size" in col else ""
        print("%-34s %-14s %s  %s" % (name, grid.replace(" ", ""), " ".join(out),
                                      " ".join("%s=%.1f" % (k, v) for v, k in stalls[:6])))


if __name__ == "__main__":
    main()
