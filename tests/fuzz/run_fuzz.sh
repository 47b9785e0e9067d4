#!/usr/bin/env bash
# Build (if needed) and run one libFuzzer driver for SECONDS.
#
#   tests/fuzz/run_fuzz.sh TARGET SECONDS [libFuzzer flags...]
#   tests/fuzz/run_fuzz.sh gguf 3600 -fork=8        # long run on 8 cores
#
# TARGET names tests/fuzz/fuzz_TARGET.c (gguf, tokenizer, ...). Builds in
# $REALM_FUZZ_BUILD (default build-fuzz/) with clang. Seeds come from
# tests/fuzz/corpus/TARGET when it exists (read-only) and a dictionary from
# tests/fuzz/TARGET.dict when it exists; inputs the fuzzer finds go to
# build-fuzz/corpus/TARGET, crashes to build-fuzz/artifacts/. Exits non-zero
# on a crash, leak, timeout or sanitizer report (libFuzzer's own exit status).
set -euo pipefail
target=${1:?usage: run_fuzz.sh TARGET SECONDS [libFuzzer flags...]}
secs=${2:?usage: run_fuzz.sh TARGET SECONDS [libFuzzer flags...]}
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${REALM_FUZZ_BUILD:-$root/build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DREALM_FUZZ=ON -DREALM_CUDA_BACKEND=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target "fuzz_$target" -j"$(nproc)" >/dev/null
work=$build/corpus/$target
mkdir -p "$work" "$build/artifacts"
args=(-max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048
      -artifact_prefix="$build/artifacts/$target-" -print_final_stats=1)
[ -f "$root/tests/fuzz/$target.dict" ] && args+=(-dict="$root/tests/fuzz/$target.dict")
dirs=("$work")
[ -d "$root/tests/fuzz/corpus/$target" ] && dirs+=("$root/tests/fuzz/corpus/$target")
exec "$build/tests/fuzz/fuzz_$target" "${args[@]}" "$@" "${dirs[@]}"
