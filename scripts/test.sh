#!/usr/bin/env bash
# The README's test command (and CI's, through .ci/run): set up, then run every
# test — the unit suite under ASan+UBSan, the Python oracle tests against the
# sanitized binary, the end-to-end suites against a server started from that
# binary, and a short libFuzzer run of every fuzz driver.
# REALM_FUZZ_SECONDS (default 30) sets the fuzzing time per driver.
source "$(dirname "$0")/lib.sh"
start=$(date +%s)

apt_ensure "${REALM_BUILD_PACKAGES[@]}" "${REALM_TEST_PACKAGES[@]}"
venv_ensure
model_ensure
export REALM_MODEL_PATH

log "unit tests (ASan+UBSan, warnings are errors)"
cmake_build "$REALM_ROOT/build-test" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREALM_WERROR=ON -DREALM_SANITIZE=ON \
    -DREALM_CUDA_BACKEND=OFF
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
(cd "$REALM_ROOT/build-test" && ctest --output-on-failure -j "$(nproc)")

if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
    log "CUDA backend compiles (nvcc; its tests run on a GPU machine: bench/cuda/device_run.sh)"
    cmake -S "$REALM_ROOT" -B "$REALM_ROOT/build-cuda-check" -DCMAKE_BUILD_TYPE=Release \
        -DREALM_TESTS=OFF -DREALM_WERROR=ON >/dev/null
    if ! cmake --build "$REALM_ROOT/build-cuda-check" --target realm_core realm_cuda_boundary realm_cuda_dataflow -j "$(nproc)" \
        >"$REALM_ROOT/build-cuda-check/build.log" 2>&1; then
        tail -n 40 "$REALM_ROOT/build-cuda-check/build.log"
        exit 1
    fi
    log "CUDA kernels: no non-coherent load ahead of griddepcontrol.wait (SASS)"
    "$REALM_VENV/bin/python" "$REALM_ROOT/tests/cuda/check_pdl_sass.py" --self-test
    "$REALM_VENV/bin/python" "$REALM_ROOT/tests/cuda/check_pdl_sass.py" \
        "$REALM_ROOT"/build-cuda-check/CMakeFiles/realm_core.dir/src/backend/cuda/*.o
fi

log "oracle tests (NumPy + gguf, HF tokenizers, Jinja2)"
export REALM_BIN="$REALM_ROOT/build-test/realm"
for t in "$REALM_ROOT"/tests/oracle/test_*.py; do
    log "  $(basename "$t")"
    "$REALM_VENV/bin/python" "$t"
done

log "bench tools (bench/cuda's log summaries, on recorded logs)"
for t in "$REALM_ROOT"/tests/bench/test_*.py; do
    "$REALM_VENV/bin/python" "$t"
done

log "end-to-end: the real server driven by Node clients and the official OpenAI client"
node --test "$REALM_ROOT"/e2e/
"$REALM_VENV/bin/python" "$REALM_ROOT/tests/openai/test_openai_client.py"

log "fuzzing (${REALM_FUZZ_SECONDS:-30} s per driver)"
mkdir -p "$REALM_ROOT/build-fuzz"
for driver in "$REALM_ROOT"/tests/fuzz/fuzz_*.c; do
    target=$(basename "$driver" .c)
    target=${target#fuzz_}
    out="$REALM_ROOT/build-fuzz/$target.log"
    if ! "$REALM_ROOT/tests/fuzz/run_fuzz.sh" "$target" "${REALM_FUZZ_SECONDS:-30}" >"$out" 2>&1; then
        tail -n 60 "$out"
        echo "fuzzing $target failed (full log: $out)" >&2
        exit 1
    fi
    grep -E '^(Done|stat::(average_exec_per_sec|new_units_added))' "$out" | sed "s|^|  $target: |"
done

log "all tests passed in $(( $(date +%s) - start )) s"
