#!/usr/bin/env python3
"""bench/cuda/speed_table.py on a trimmed `device_run.sh all` log (the shape
of the real one: correctness tables first, whose rows must not be taken for
llama-bench's): the roofline share, every ratio, llama.cpp's rows matched to
the models in order, the separate 64-stream run; and a log with no
llama.cpp section gives dashes, not an error. Exits non-zero on failure."""
import sys

from tool_run import run_tool


LOG = """\
| model                        | prefill   | decode    | tol      | greedy same | near-ties | ok   |
| llama-3.2-1b q4_k_m L2       | 1.2e-03   | 2.0e-03   | 2.0e-02  | 32/32       | 0         | PASS |
== speed ==
BW_GBs=3000
model bytes 750000000 /tmp/models/llama-3.2-1b-q4_k_m.gguf
BENCH model=/tmp/models/llama-3.2-1b-q4_k_m.gguf device=cuda load_s=0.1 decode1_tok_s=1200.0 \
prefill128_tok_s=1 prefill256_tok_s=2 prefill512_tok_s=80000 agg1_tok_s=1210.0 agg8_tok_s=6000.0 \
agg32_tok_s=18000.0 agg64_tok_s=24000.0
BENCH model=/tmp/models/llama-3.2-1b-q4_k_m.gguf device=cuda agg64_tok_s=25000.0 step_ms=2.6 logit_rows=64
model bytes 8500000000 /tmp/models/llama-3-8b-q8_0.gguf
BENCH model=/tmp/models/llama-3-8b-q8_0.gguf device=cuda load_s=1.1 decode1_tok_s=285.0 \
prefill512_tok_s=16000 agg1_tok_s=286.0 agg8_tok_s=1600.0 agg32_tok_s=5200.0 agg64_tok_s=6800.0
llama.cpp build rc=0
| model                          |       size |     params | backend    | ngl |            test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | --: | --------------: | -------------------: |
| llama 1B Q4_K - Medium         | 698.23 MiB |     1.24 B | CUDA       |  99 |           pp512 |  40000.00 ± 10000.00 |
| llama 1B Q4_K - Medium         | 698.23 MiB |     1.24 B | CUDA       |  99 |           tg128 |        800.00 ± 14.66 |
|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
|    16 |     64 |    1 |     80 |    0.037 |   431.87 |    0.084 |   605.00 |    0.121 |   662.84 |
|    16 |     64 |    8 |    640 |    0.009 | 14170.26 |    0.156 |  3000.00 |    0.165 |  3877.00 |
|    16 |     64 |   32 |   2560 |    0.015 | 35290.88 |    0.219 |  9000.00 |    0.234 | 10949.72 |
|    16 |     64 |   64 |   5120 |    0.030 | 34019.93 |    0.320 | 12000.00 |    0.350 | 14617.42 |
| model                          |       size |     params | backend    | ngl |            test |                  t/s |
| llama 8B Q8_0                  |   7.95 GiB |     8.03 B | CUDA       |  99 |           pp512 |   10000.00 ± 2000.00 |
| llama 8B Q8_0                  |   7.95 GiB |     8.03 B | CUDA       |  99 |           tg128 |        228.00 ± 1.44 |
|    16 |     64 |    1 |     80 |    0.030 |   536.26 |    0.291 |   220.00 |    0.321 |   249.33 |
|    16 |     64 |    8 |    640 |    0.021 |  6012.78 |    0.496 |  1000.00 |    0.517 |  1237.81 |
|    16 |     64 |   32 |   2560 |    0.048 | 10718.02 |    0.666 |  4000.00 |    0.714 |  3587.17 |
|    16 |     64 |   64 |   5120 |    0.098 | 10489.33 |    0.907 |  4533.33 |    1.005 |  5095.86 |
"""

EXPECT = [
    "| 1B Q4_K_M | decode1 (tg128) | 1200.0 (30% of 4000) | 800.0 | 1.50× |",
    "| 1B Q4_K_M | prefill512 | 80000 | 40000 ± 10000 | 2.00× |",
    "| 1B Q4_K_M | agg 1/8/32/64 | 1210/6000/18000/24000 | 605/3000/9000/12000 | 2.00/2.00/2.00/2.00× |",
    "| 8B Q8_0 | decode1 (tg128) | 285.0 (81% of 353) | 228.0 | 1.25× |",
    "| 8B Q8_0 | prefill512 | 16000 | 10000 ± 2000 | 1.60× |",
    "| 8B Q8_0 | agg 1/8/32/64 | 286/1600/5200/6800 | 220/1000/4000/4533 | 1.30/1.60/1.30/1.50× |",
    "Separate 64-stream runs: 1B Q4_K_M 25000 tok/s (2.08×)",
    "Roofline: the weight bytes a decode step reads at the measured copy bandwidth, 3000 GB/s.",
]


def main():
    fails = 0
    r = run_tool("speed_table.py", LOG, "realm_speed_table_test.log")
    lines = r.stdout.splitlines()
    for want in EXPECT:
        if want not in lines:
            print(f"FAIL: missing line {want!r}")
            fails += 1
    # no llama.cpp section: dashes where its figures would be
    bare = LOG[: LOG.index("llama.cpp build")]
    r2 = run_tool("speed_table.py", bare, "realm_speed_table_test2.log")
    if r2.returncode != 0 or "| 8B Q8_0 | decode1 (tg128) | 285.0 (81% of 353) | — | — |" not in r2.stdout:
        print(f"FAIL: without llama.cpp: rc={r2.returncode}\n{r2.stdout}{r2.stderr}")
        fails += 1
    # not a speed log: a clear error
    r3 = run_tool("speed_table.py", "nothing here\n", "realm_speed_table_test3.log")
    if r3.returncode == 0 or "no 'model bytes' lines" not in r3.stderr:
        print(f"FAIL: a log without models should be refused: rc={r3.returncode} {r3.stderr}")
        fails += 1
    if fails:
        print(r.stdout + r.stderr)
        sys.exit(1)
    print("speed_table: all checks passed")


if __name__ == "__main__":
    main()
