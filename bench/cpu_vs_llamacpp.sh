#!/bin/sh
# bench/cpu_vs_llamacpp.sh — Realm's CPU backend against llama.cpp's
# llama-bench on the same GGUF files, side by side.
#
# Synthesizes (realm synth, random weights) the SmolLM2-135M and
# Llama-3.2-1B shapes in Q4_0, Q4_1, Q4_K_M, Q8_0 and F16 into $REALM_CACHE
# (default /tmp/realm-bench), then for ROUNDS rounds runs, file by file,
# `realm bench` and `llama-bench` back to back with the same -p/-n/-t/-r, so
# both see the same machine load; the table gives the median over rounds of
# each tool's mean tokens/s, the Realm/llama.cpp ratio, and Realm's tg
# roofline share (see `realm bench`).
#
# llama.cpp is a comparison tool only and never enters the repository: set
# LLAMA_BENCH=/path/to/llama-bench, or the script builds one from the PyPI
# sdist of llama-cpp-python (vendor/llama.cpp) under $REALM_CACHE/llamacpp.
#
# usage: bench/cpu_vs_llamacpp.sh [-t THREADS] [-p 512] [-n 128] [-r 3] [-k ROUNDS]
#                                 [-m "smollm2-135m llama-3.2-1b"] [-y "q4_0 q4_1 q4_k_m q8_0 f16"]
# env: REALM (default build/realm), REALM_CACHE, LLAMA_BENCH, PYTHON (with pip and gguf)
set -eu

THREADS=2 PP=512 TG=128 REPS=3 ROUNDS=3
MODELS="smollm2-135m llama-3.2-1b"
TYPES="q4_0 q4_1 q4_k_m q8_0 f16"
while getopts t:p:n:r:k:m:y: opt; do
    case $opt in
    t) THREADS=$OPTARG ;; p) PP=$OPTARG ;; n) TG=$OPTARG ;; r) REPS=$OPTARG ;;
    k) ROUNDS=$OPTARG ;; m) MODELS=$OPTARG ;; y) TYPES=$OPTARG ;;
    *) sed -n '2,22p' "$0" >&2; exit 2 ;;
    esac
done

REALM=${REALM:-build/realm}
CACHE=${REALM_CACHE:-/tmp/realm-bench}
mkdir -p "$CACHE"

# ---- llama-bench: given, or built once from the PyPI sdist ----
if [ -z "${LLAMA_BENCH:-}" ]; then
    LLAMA_BENCH=$CACHE/llamacpp/build/bin/llama-bench
    if [ ! -x "$LLAMA_BENCH" ]; then
        echo "building llama-bench under $CACHE/llamacpp (comparison only)" >&2
        mkdir -p "$CACHE/llamacpp"
        (cd "$CACHE/llamacpp" &&
            "${PYTHON:-python3}" -m pip download --no-deps --no-binary :all: llama-cpp-python -d . >&2 &&
            tar xzf llama_cpp_python-*.tar.gz &&
            cmake -S llama_cpp_python-*/vendor/llama.cpp -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
                -DCMAKE_BUILD_TYPE=Release >&2 &&
            cmake --build build --target llama-bench -j "$(nproc)" >&2)
    fi
fi

# ---- the files ----
for m in $MODELS; do
    for y in $TYPES; do
        f=$CACHE/$m.$y.gguf
        [ -f "$f" ] || "$REALM" synth --arch "$m" --type "$y" -o "$f" >&2
    done
done

# ---- interleaved runs; raw results: file tool test tokens_per_s [roofline%] ----
RAW=$CACHE/results.$$.tsv
: > "$RAW"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for m in $MODELS; do
        for y in $TYPES; do
            f=$CACHE/$m.$y.gguf
            "$REALM" bench "$f" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" |
                awk -F'|' -v f="$m.$y" '$4 ~ /(pp|tg)[0-9]/ {
                    gsub(/ /, "", $4); split($5, v, "±"); roof = $6; sub(/ *%.*/, "", roof); gsub(/ /, "", roof);
                    printf "%s\trealm\t%s\t%s\t%s\n", f, $4, v[1] + 0, roof }' >> "$RAW"
            "$LLAMA_BENCH" -m "$f" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" -o csv 2>/dev/null |
                awk -F',' -v f="$m.$y" 'NR == 1 { for (i = 1; i <= NF; i++) { h = $i; gsub(/"/, "", h); col[h] = i } next }
                    { p = $col["n_prompt"]; g = $col["n_gen"]; t = $col["avg_ts"];
                      gsub(/"/, "", p); gsub(/"/, "", g); gsub(/"/, "", t);
                      printf "%s\tllama.cpp\t%s\t%s\t\n", f, (p + 0 > 0 ? "pp" p : "tg" g), t + 0 }' >> "$RAW"
            echo "round $round: $m.$y done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        done
    done
    round=$((round + 1))
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# ---- medians ----
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pick() { awk -F'\t' -v f="$1" -v t="$2" -v x="$3" -v c="$4" '$1 == f && $2 == t && $3 == x { print $c }' "$RAW" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

echo
echo "threads $THREADS, $ROUNDS rounds x $REPS repetitions; medians of per-round means (tokens/s)"
echo "| file | realm pp$PP | llama.cpp pp$PP | ratio | realm tg$TG | llama.cpp tg$TG | ratio | realm tg roofline % |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for m in $MODELS; do
    for y in $TYPES; do
        f=$m.$y
        rp=$(pick "$f" realm "pp$PP" 4) lp=$(pick "$f" llama.cpp "pp$PP" 4)
        rt=$(pick "$f" realm "tg$TG" 4) lt=$(pick "$f" llama.cpp "tg$TG" 4)
        roof=$(pick "$f" realm "tg$TG" 5)
        echo "| $f | $rp | $lp | $(ratio "$rp" "$lp") | $rt | $lt | $(ratio "$rt" "$lt") | $roof |"
    done
done
echo "raw results: $RAW"
