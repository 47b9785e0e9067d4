#!/usr/bin/env python3
"""bench/cuda/ab_table.py on a recorded `device_run.sh ab` excerpt (call 7
of NOTES round 15): decode1 runs gathered per variant across the rotating
rounds, medians and their change against old, the single prefill/aggregate
figures against old's; lines outside the A/B sections (BENCH, totals) are
not taken; a log without A/B sections is refused. Exits non-zero on failure."""
import sys

from tool_run import run_tool


LOG = """\
BENCH model=/tmp/models/llama-3-8b-q4_k_m.gguf device=cuda agg64_tok_s=7096.1 step_ms=9.02 logit_rows=64
A/B llama-3-8b-q4_k_m.gguf: decode1 x3 per variant
new decode1_tok_s=372.7
REALM_CUDA_ATT_SPLIT=4 decode1_tok_s=365.0
old decode1_tok_s=364.2
REALM_CUDA_ATT_SPLIT=4 decode1_tok_s=361.7
old decode1_tok_s=364.1
new decode1_tok_s=374.0
old decode1_tok_s=366.0
new decode1_tok_s=374.4
REALM_CUDA_ATT_SPLIT=4 decode1_tok_s=364.2
A/B llama-3-8b-q4_k_m.gguf: prefill and aggregate decode per variant
old prefill512_tok_s=16919 agg8_tok_s=2062.1 agg64_tok_s=7200.0
new prefill512_tok_s=16941 agg8_tok_s=2035.0 agg64_tok_s=7143.8
REALM_CUDA_ATT_SPLIT=4 prefill512_tok_s=17082 agg8_tok_s=2089.8
A/B llama-3-8b-q8_0.gguf: decode1 x3 per variant
new decode1_tok_s=284.9
old decode1_tok_s=281.5
old decode1_tok_s=281.4
new decode1_tok_s=284.5
old decode1_tok_s=281.0
new decode1_tok_s=282.7
total: 306 s
"""

EXPECT = [
    "llama-3-8b-q4_k_m.gguf",
    "| old | 364.2/364.1/366.0 | 364.2 | — |",
    "| new | 372.7/374.0/374.4 | 374.0 | +2.7% |",
    "| REALM_CUDA_ATT_SPLIT=4 | 365.0/361.7/364.2 | 364.2 | +0.0% |",
    "| variant | prefill512 | agg8 | agg64 |",
    "| old | 16919 | 2062 | 7200 |",
    "| new | 16941 (+0.1%) | 2035 (-1.3%) | 7144 (-0.8%) |",
    "| REALM_CUDA_ATT_SPLIT=4 | 17082 (+1.0%) | 2090 (+1.3%) | — |",
    "llama-3-8b-q8_0.gguf",
    "| new | 284.9/284.5/282.7 | 284.5 | +1.1% |",
]


def main():
    r = run_tool("ab_table.py", LOG, "realm_ab_table_test.log")
    lines = r.stdout.splitlines()
    fails = [w for w in EXPECT if w not in lines]
    if any("7096" in ln for ln in lines):
        fails.append("a BENCH line outside the A/B sections was taken")
    r2 = run_tool("ab_table.py", "BENCH model=x decode1_tok_s=1\n", "realm_ab_table_test2.log")
    if r2.returncode == 0 or "no 'A/B <model>" not in r2.stderr:
        fails.append(f"a log without A/B sections should be refused: rc={r2.returncode}")
    if fails or r.returncode:
        print("FAIL:\n  " + "\n  ".join(fails) + "\n" + r.stdout + r.stderr)
        sys.exit(1)
    print("ab_table: all checks passed")


if __name__ == "__main__":
    main()
