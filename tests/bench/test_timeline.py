#!/usr/bin/env python3
"""bench/cuda/timeline.py on a made-up CUPTI timeline whose answer is known:
steps of get_rows, a mat-vec that starts 1 us before get_rows ends
(lead 1, adds 8) and a small kernel that starts 5 us after the mat-vec ends
(the GPU idle, waiting for the host: counted apart, adds 2), plus a kernel
on another stream; five launches of get_rows make four whole steps, of
which the default --skip 0.25 leaves out the first. Then steps of four
layers whose mat-vec alternates between two types: the layer's period, its
positions and what it adds. A CSV without the step's first kernel, or
with a row that is not a kernel record, is refused. Exits non-zero on
failure."""
import re
import sys

from tool_run import run_tool


def csv_text():
    rows, t = [], 1_000_000
    for _ in range(5):
        rows.append(f"{t},{t + 2000},7,16x1x1,256x1x1,0,32768,25,k_get_rows")
        rows.append(f"{t + 1000},{t + 10000},7,396x1x1,288x1x1,40960,135168,72,"
                    f"void k_mmv_ring<(realm_type)12, (realm_type)12, 4, 1, false>(mms_set, int)")
        rows.append(f"{t + 15000},{t + 17000},7,4x1x1,128x1x1,0,32768,40,k_rmsnorm_quant<256>")
        rows.append(f"{t + 3000},{t + 4000},9,4x1x1,32x1x1,0,0,16,k_l2_prefetch")
        t += 20000
    return "\n".join(rows) + "\n"


def main():
    fails = []
    r = run_tool("timeline.py", csv_text(), "realm_timeline_test.csv")
    out = r.stdout
    if r.returncode:
        fails.append(f"rc={r.returncode}")
    # 5 launches of get_rows make 4 whole steps; --skip 0.25 drops the first
    if not re.search(r"^3 steps, 3 kernels a step on stream 7; step span median 17\.0 us", out, re.M):
        fails.append("steps and span")
    if "idle waits for the host (median 5.0 us): 12.0 us" not in out:
        fails.append("the host wait counted apart")
    ring = re.search(r"^k_mmv_ring<12,12,4,1,false>\s+396x1x1\s+1\.0\s+9\.00\s+1\.00\s+8\.00\s+8\.0\s+66\.7%",
                     out, re.M)
    if not ring:
        fails.append("the mat-vec's dur, lead, adds and share")
    if not re.search(r"^k_rmsnorm_quant<256>\s+4x1x1\s+1\.0\s+2\.00\s+-5\.00\s+2\.00", out, re.M):
        fails.append("the small kernel after the host wait")
    if not re.search(r"^sum of adds/step\s+12\.0$", out, re.M):
        fails.append("sum of adds")
    if "other streams: k_l2_prefetch" not in out:
        fails.append("the other stream")
    # a step of get_rows, four layers of (norm 2 us, mat-vec 5, quantize 1;
    # every other layer's mat-vec of another type) and a head: the layer's
    # period found by name, its positions and what it adds
    rows, t = [], 0
    for _ in range(3):
        seq = [("k_get_rows", 2)]
        for layer in range(4):
            seq += [("k_rmsnorm_quant<256>", 2),
                    (f"k_mmv_ring<{12 + layer % 2},12,4,1,false>", 5), ("k_quantize_act<256,1>", 1)]
        seq.append(("k_mmv_ring<14,14,4,1,false>", 50))
        for name, us in seq:
            rows.append(f"{t},{t + us * 1000},7,1x1x1,32x1x1,0,0,8,{name}")
            t += us * 1000
    r3 = run_tool("timeline.py", "\n".join(rows) + "\n", "realm_timeline_test3.csv")
    if not re.search(r"^a layer: 3 kernels, 4 layers a step", r3.stdout, re.M):
        fails.append("the layer's period")
    if not re.search(r"^\s+1 k_mmv_ring<13,12,4,1,false>\s+1x1x1\s+0\.50\s+5\.00$", r3.stdout, re.M):
        fails.append("a position's second kernel and its share")
    if not re.search(r"^  a layer adds 8\.0 us$", r3.stdout, re.M):
        fails.append("what a layer adds")
    r2 = run_tool("timeline.py", "1,2,7,1x1x1,1x1x1,0,0,8,k_other\n", "realm_timeline_test2.csv")
    if r2.returncode == 0 or "no k_get_rows" not in r2.stderr:
        fails.append(f"a timeline without k_get_rows should be refused: rc={r2.returncode}")
    r4 = run_tool("timeline.py", "1,2,7,1x1x1\n", "realm_timeline_test4.csv")
    if r4.returncode == 0 or "line 1: not start,end" not in r4.stderr:
        fails.append(f"a short row should be refused by its line: rc={r4.returncode}")
    if fails:
        print("FAIL:\n  " + "\n  ".join(fails) + "\n" + out + r.stderr + r3.stdout + r3.stderr)
        sys.exit(1)
    print("timeline: all checks passed")


if __name__ == "__main__":
    main()
