#!/usr/bin/env bash
# Build (if needed) and run the GGUF fuzzer for SECONDS over the seed corpus.
#
#   tests/fuzz/run_fuzz.sh SECONDS [libFuzzer flags...]
#   tests/fuzz/run_fuzz.sh 3600 -fork=8        # long run on 8 cores
#
# Builds in $REALM_FUZZ_BUILD (default build-fuzz/) with clang. Seeds come from
# tests/fuzz/corpus/gguf (read-only); inputs the fuzzer finds go to
# build-fuzz/corpus/gguf, crashes to build-fuzz/artifacts/. Exits non-zero on a
# crash, leak, timeout or sanitizer report (libFuzzer's own exit status).
set -euo pipefail
secs=${1:?usage: run_fuzz.sh SECONDS [libFuzzer flags...]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${REALM_FUZZ_BUILD:-$root/build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DREALM_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target fuzz_gguf -j"$(nproc)" >/dev/null
seeds=$root/tests/fuzz/corpus/gguf
work=$build/corpus/gguf
mkdir -p "$work" "$build/artifacts"
exec "$build/tests/fuzz/fuzz_gguf" -max_total_time="$secs" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -dict="$root/tests/fuzz/gguf.dict" -artifact_prefix="$build/artifacts/" \
    -print_final_stats=1 "$@" "$work" "$seeds"
