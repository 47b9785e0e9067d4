#!/usr/bin/env bash
# bench/generate_bench.sh — prompt (pp) and generation (tg) tokens/s of
# `realm generate` on the default model, median of RUNS runs.
#
# usage: bench/generate_bench.sh [RUNS]   (default 5)
# env:   REALM_BIN (default build-release/realm: build it with
#        cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && make -C build-release realm),
#        REALM_MODEL_PATH, THREADS (default: all cores), N_GEN (default 32).
# Each run: a fixed raw-text prompt (see PROMPT) prefilled in one chunk, then
# N_GEN greedy tokens (temperature 0: no sampling cost hides in tg). pp is
# prompt tokens / prefill time; tg is decode steps / decode time, as printed by
# realm generate. Numbers depend on what else runs on the machine: report them
# with the machine line this script prints.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
bin="${REALM_BIN:-$root/build-release/realm}"
model="${REALM_MODEL_PATH:-$HOME/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
n_gen="${N_GEN:-32}"
threads="${THREADS:-0}"
PROMPT="The history of the city begins with a small settlement on the river bank, where fishermen \
and traders met to exchange goods. Over the centuries the settlement grew into a market town, \
then into a fortified city with walls, gates and a cathedral. Today it is known for"

cmd=("$bin" generate "$model" -p "$PROMPT" -n "$n_gen" --temp 0 --threads "$threads")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: ${cmd[*]}"
pp=() tg=()
for i in $(seq "$runs"); do
    line="$("${cmd[@]}" 2>&1 >/dev/null | grep '^realm generate: prompt')"
    p="$(sed -E 's/.*prompt ([0-9]+) tokens in [0-9.]+ s \(([0-9.]+) tok\/s\).*/\2/' <<<"$line")"
    t="$(sed -E 's/.*decode steps in [0-9.]+ s \(([0-9.]+) tok\/s\).*/\1/' <<<"$line")"
    n="$(sed -E 's/.*prompt ([0-9]+) tokens.*/\1/' <<<"$line")"
    echo "run $i: prompt $n tokens, pp $p tok/s, tg $t tok/s"
    pp+=("$p") tg+=("$t")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median of $runs: pp $(median "${pp[@]}") tok/s, tg $(median "${tg[@]}") tok/s"
