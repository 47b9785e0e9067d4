#!/usr/bin/env bash
# bench/cuda/device_run.sh — everything the CUDA backend is judged by, in one
# run on a GPU machine: build, per-op and whole-model correctness against the
# CPU backend (tables), then speed on synth models (Llama-3-8B shape Q4_K_M and
# Q8_0, Llama-3.2-1B Q4_K_M) and, when a trimmed llama.cpp source tarball is
# carried in .llama/, the same models through llama-bench for comparison.
# That tarball (8 MB; git-ignored, for the device tool's carry) is the
# llama-cpp-python sdist's vendor tree without its models, docs and other
# backends:
#   pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/lc &&
#   tar xzf /tmp/lc/llama_cpp_python-0.3.36.tar.gz -C /tmp/lc && cd /tmp/lc/llama_cpp_python-0.3.36/vendor &&
#   rm -rf llama.cpp/{models,docs,benches,tools/ui} llama.cpp/ggml/src/ggml-{vulkan,sycl,opencl,cann,metal} &&
#   mkdir -p llama.cpp/models && mkdir -p $REPO/.llama && tar czf $REPO/.llama/llama.tgz llama.cpp
#   usage: bench/cuda/device_run.sh [correct|speed|all|quick|profile|ab|ops|bench|sanitize|timeline|serve|kv|build] [--no-llama]
# The speed table of an all/speed run (ratios, roofline shares): keep the
# whole output (`device_run.sh all > $OUT/all.log 2>&1`; a call's output tail
# is cut) and run bench/cuda/speed_table.py on it.
# quick = correct + speed without llama.cpp, plus A/B decodes of the 8B
# models with the staged mat-vec, fusion, split attention or mat-vec sets
# off, and the int8 tile kernel off (REALM_CUDA_MMQ=0). Every speed run also
# measures the tile kernel at prefill sizes (REALM_CUDA_MMQ_ROWS=512) and
# profiles the Q4_K_M models op by op at 1 and 64 streams. correct/quick also
# run the whole-model test with the tile kernel off.
# profile = build, then ncu times every kernel of a batch-1 decode step of the
# 8B Q4_K_M (PROF_TYPE=q8_0: the Q8_0, or both; PROF_LAYERS=N: an N-layer
# model of that shape; no launch gaps: bench/cuda/ncu_steps.py sums them by kernel) and
# reads one kernel's stall sections ($PROF_KERNEL, default the staged mat-vec);
# PROF_PREFILL=P first does the same for the kernels of a P-row prefill pass
# (PROF_DECODE=0 skips the decode step; PROF_ARGS replaces the bench
# arguments of the stall-section run, e.g. "--prefill 512").
# ab = per-op tests (twice if a row fails), the whole-model test, and A/B
# runs of the 8B Q4_K_M and Q8_0: the committed CUDA backend (built beside)
# against the working tree's, and the working tree's under each setting of
# $AB_ENVS (e.g. AB_ENVS="REALM_CUDA_PDL=0 REALM_CUDA_ATT_SPLIT=4,REALM_CUDA_MMQ=0"):
# decode1 three times each in rotating order (AB_DECODE=0 skips it), then
# prefill and 8/32/64-stream decode once each, the stream counts of
# $AB_STREAMS (e.g. "16 24"), the mixed passes of $AB_MIXED (e.g. "8 32":
# decode rows beside a prompt chunk) and the prefill sizes of $AB_PREFILL
# (e.g. "96 128") alone, the op profile of $AB_PROF_STREAMS
# streams per variant, then that of a 512-row prefill (AB_PROFILE=0 skips it).
# bench/cuda/ab_table.py on the saved output sums the A/B up (medians, ratios).
# Build dependencies come as .debs in .debs/ (unpacked into a private prefix):
#   mkdir -p .debs && (cd .debs && apt-get download libpcre2-dev libpcre2-8-0 libpcre2-16-0 \
#     libpcre2-32-0 libpcre2-posix3 libjansson-dev libjansson4 libcmocka-dev libcmocka0)
# and the committed tree as .head/ (git archive -o .head/head.tar HEAD && git rev-parse
# --short HEAD > .head/COMMIT); both are git-ignored: pass them to the device tool's carry.
set -u
PHASE=${1:-all}
LLAMA=1; [ "${2:-}" = "--no-llama" ] && LLAMA=0
[ "$PHASE" = quick ] && LLAMA=0
ROOT=$(pwd)
OUT=${OUT:-/tmp/realm-out}; mkdir -p "$OUT"
J=$(nproc)
PFX=/tmp/realm-prefix
mkdir -p $PFX
for f in $ROOT/.debs/*.deb; do dpkg -x "$f" $PFX; done
export PKG_CONFIG_SYSROOT_DIR=$PFX
export PKG_CONFIG_PATH=$PFX/usr/lib/x86_64-linux-gnu/pkgconfig:$PFX/usr/share/pkgconfig
export CMAKE_PREFIX_PATH=$PFX/usr
export LD_LIBRARY_PATH=$PFX/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader

# llama.cpp builds in the background while our tests run.
if [ $LLAMA = 1 ] && [ "$PHASE" != correct ] && [ -f $ROOT/.llama/llama.tgz ]; then
  (mkdir -p /tmp/llama && tar xzf $ROOT/.llama/llama.tgz -C /tmp/llama && cd /tmp/llama/llama.cpp &&
   cmake -S . -B build -G Ninja -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF \
     -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
     -DLLAMA_BUILD_APP=OFF -DCMAKE_BUILD_TYPE=Release > /tmp/llama-cfg.log 2>&1 &&
   nice ninja -C build -j $((J - 2)) llama-bench llama-batched-bench > /tmp/llama-build.log 2>&1;
   echo "llama.cpp build rc=$?" >> /tmp/llama-build.log) &
  LLAMA_PID=$!
fi

# The CPU reference must be the committed one, not whatever others have
# half-edited in the working tree: the source is .head/head.tar (made before
# the call by `git archive -o .head/head.tar HEAD`; or `git archive HEAD`
# where there is none), with only the CUDA backend's own files laid over it.
t0=$(date +%s)
# prep DIR OVERLAY: the committed tree in DIR, with (OVERLAY=1) the working
# tree's CUDA files laid over it, trimmed for the GPU machine.
prep() {
  local d=$1; rm -rf $d; mkdir -p $d
  # .head first: the device copy's .git is the one of the session's start,
  # not the current commit (every "old" of round 8's first five calls was
  # that tree, whatever .head said)
  if [ -f $ROOT/.head/head.tar ]; then
    tar xf $ROOT/.head/head.tar -C $d
  elif git -C $ROOT rev-parse -q --verify HEAD > /dev/null 2>&1; then
    git -C $ROOT archive HEAD | tar x -C $d
  else
    echo "no committed tree (.git or .head/head.tar): refusing to compare against the working tree"; exit 1
  fi
  if [ $2 = 1 ]; then
    for p in src/backend/cuda src/backend/registry.h src/backend/registry.c cmake/cuda.cmake \
             src/cli/cmd_logits.c tests/cuda bench/cuda; do
      mkdir -p $d/$(dirname $p); rm -rf $d/$p; cp -r $ROOT/$p $d/$p
    done
  fi
  grep -q 'cmake/cuda.cmake' $d/CMakeLists.txt ||
    sed -i '/^target_link_libraries(realm_core PUBLIC/a include(${CMAKE_SOURCE_DIR}/cmake/cuda.cmake)' $d/CMakeLists.txt
  # The GPU machine lacks libwebsockets/sqlite: unless their .debs came in
  # .debs/ (the serve phase's list below), drop the server and tenants
  # modules (the CUDA backend needs neither).
  if ! pkg-config --exists libwebsockets sqlite3; then
    sed -i -E '/^set\(REALM_MODULES /{s/ tenants//; s/ server//}; /pkg_check_modules\((SQLITE3|LWS) /d; s/ PkgConfig::(LWS|SQLITE3)//g' $d/CMakeLists.txt
    for c in tenant serve; do
      [ -f $d/src/cli/cmd_$c.c ] && printf 'int realm_cmd_%s(int argc, char **argv);\nint realm_cmd_%s(int argc, char **argv) { (void)argc; (void)argv; return 2; }\n' $c $c > $d/src/cli/cmd_$c.c
    done
  fi
  cmake -S $d -B $d/build-cuda-dev -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/realm-cfg.log 2>&1 || { tail -30 /tmp/realm-cfg.log; exit 1; }
}
SRC=/tmp/realm-src
prep $SRC 1
echo "reference tree: $(cat $ROOT/.head/COMMIT 2>/dev/null || git -C $ROOT rev-parse --short HEAD 2>/dev/null)"
# ab: the committed CUDA backend too, built alongside, for A/B runs in one call
if [ "$PHASE" = ab ]; then
  prep /tmp/realm-ref 0
  (ninja -C /tmp/realm-ref/build-cuda-dev -j $((J / 2)) realm_bench_cuda > /tmp/realm-ref-build.log 2>&1; echo "rc=$?" >> /tmp/realm-ref-build.log) &
  REF_PID=$!
fi
cd $SRC
ninja -C build-cuda-dev -j $J realm test_cuda_ops test_cuda_model realm_bench_cuda > /tmp/realm-build.log 2>&1 || { grep -E "error" -A3 /tmp/realm-build.log | head -60; exit 1; }
echo "realm build: $(( $(date +%s) - t0 )) s"
B=build-cuda-dev
# build: only that (for a call's own commands after it, in /tmp/realm-src)
[ "$PHASE" = build ] && exit 0

# bench: no tests; realm_bench_cuda on the 8B Q4_K_M and Q8_0 (or the
# shape:scheme models of $BENCH_MODELS, e.g. "llama-3.2-1b:q4_k_m") with each
# argument set of $BENCH_ARGS (';'-separated, default "--streams 64") under
# each setting of $BENCH_ENVS (space-separated, commas join variables, "-" =
# the defaults), $BENCH_ROUNDS (2) rounds in rotating order: a quick A/B of
# knobs.
if [ "$PHASE" = bench ]; then
  mkdir -p /tmp/models
  V=(${BENCH_ENVS:--})
  IFS=';' read -ra ARGS <<< "${BENCH_ARGS:---streams 64}"
  for spec in ${BENCH_MODELS:-llama-3-8b:q4_k_m llama-3-8b:q8_0}; do
    sh=${spec%%:*} t=${spec##*:}
    f=/tmp/models/$sh-$t.gguf
    [ -f $f ] || $B/realm synth --arch $sh --type $t -o $f > /dev/null || exit 1
    for a in "${ARGS[@]}"; do
      for i in $(seq 1 ${BENCH_ROUNDS:-2}); do
        for k in $(seq 0 $(( ${#V[@]} - 1 ))); do
          v=${V[$(( (k + i) % ${#V[@]} ))]}
          e=${v//,/ }; [ "$v" = - ] && e=REALM_CUDA_NONE=0
          echo "$spec [$a] $v $(env $e timeout 120 $B/realm_bench_cuda $f --device cuda $a 2>&1 | grep -oE '[a-z0-9_]+_(tok_s|ms)=[0-9.]+' | tr '\n' ' ')"
        done
      done
    done
  done
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

# timeline: each kernel's start and end in the real pipeline (CUPTI activity
# records through bench/cuda/timeline_inject.c, loaded as a CUDA injection
# library; nothing serialized), for a --steps 32 --decode-only run of each
# model of $TL_MODELS (default the 8B Q4_K_M and Q8_0 and the 1B Q4_K_M),
# under each setting of $TL_ENVS and each argument set of $TL_ARGS
# (';'-separated, e.g. "--kv-type f16;--kv-type f32"); bench/cuda/timeline.py sums each kernel's
# share of a step. Needs the PyPI wheel nvidia-cuda-cupti (headers and
# libcupti) in .whl/cupti/ (`pip download --no-deps nvidia-cuda-cupti==13.0.85
# -d .whl/cupti`); the CSVs stay in $OUT.
if [ "$PHASE" = timeline ]; then
  CU=/tmp/cupti; mkdir -p $CU
  whl=$(ls $ROOT/.whl/cupti/nvidia_cuda_cupti-*.whl 2>/dev/null | head -1)
  [ -n "$whl" ] || { echo "timeline: no nvidia-cuda-cupti wheel in .whl/cupti (pip download --no-deps nvidia-cuda-cupti==13.0.85 -d .whl/cupti)"; exit 1; }
  python3 -m zipfile -e "$whl" $CU || exit 1
  CUDA_ROOT=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
  gcc -std=c17 -O2 -fPIC -shared -I $CU/nvidia/cu13/include -I $CUDA_ROOT/include \
    $ROOT/bench/cuda/timeline_inject.c -o $CU/libtimeline.so -L $CU/nvidia/cu13/lib -l:libcupti.so.13 || exit 1
  mkdir -p /tmp/models
  for spec in ${TL_MODELS:-llama-3-8b:q4_k_m llama-3-8b:q8_0 llama-3.2-1b:q4_k_m}; do
    sh=${spec%%:*} t=${spec##*:}
    f=/tmp/models/$sh-$t.gguf
    [ -f $f ] || $B/realm synth --arch $sh --type $t -o $f > /dev/null || exit 1
    IFS=';' read -ra TARGS <<< "${TL_ARGS:-}"; [ ${#TARGS[@]} = 0 ] && TARGS=("")
    for v in ${TL_ENVS:--}; do
      for a in "${TARGS[@]}"; do
      e=${v//,/ }; [ "$v" = - ] && e=REALM_CUDA_NONE=0
      tag=$sh-$t${v/#-/}$a; tag=$(echo "$tag" | tr -c 'A-Za-z0-9_.\n-' _)
      echo "== $spec $v $a: untraced $(env $e timeout 120 $B/realm_bench_cuda $f --device cuda --steps 32 --decode-only $a 2>&1 | grep -oE 'decode1_tok_s=[0-9.]+')"
      env $e CUDA_INJECTION64_PATH=$CU/libtimeline.so REALM_TIMELINE_OUT=$OUT/tl_$tag.csv \
        LD_LIBRARY_PATH=$CU/nvidia/cu13/lib:$LD_LIBRARY_PATH \
        timeout 180 $B/realm_bench_cuda $f --device cuda --steps 32 --decode-only $a 2>&1 | grep -E "decode1|timeline"
      python3 $ROOT/bench/cuda/timeline.py $OUT/tl_$tag.csv
      done
    done
  done
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

# serve: Realm's own front end on the GPU. The engine's tests with the CUDA
# backend under them (REALM_TEST_BACKEND=cuda: mixed prompt-chunk and decode
# batches, block tables, prefix hits, preemption, cancellation under threads,
# each against the same backend's solo run), the engine's throughput (realm
# engine-bench --device cuda on the models of $SERVE_BENCH, default the 1B and
# 8B Q4_K_M), then `realm serve --device cuda` checked from an OpenAI client
# (tests/cuda/serve_check.py: the backend named, Paris, SSE, $SERVE_STREAMS (64)
# concurrent greedy and sampled requests, a clean drain) on the default model,
# and the same with --device cpu for comparison.
# Needs the server's .debs (libwebsockets-dev libwebsockets17 libsqlite3-dev
# libsqlite3-0 libssl-dev libcap-dev libcap2 zlib1g-dev, `apt-get download`ed
# into .debs/ beside the others) and the default model, which is over the
# carry's 64 MiB with the rest: it travels in two calls back to back (the
# machine keeps /tmp while warm), `split -n 2` of the GGUF as .model1/part and
# .model2/part, each call carrying one; the phase keeps the first in
# /tmp/models, joins them and checks the sha256 of scripts/lib.sh. Without
# both halves the serve checks are skipped and say so.
if [ "$PHASE" = serve ]; then
  ninja -C $B -j $J test_engine test_engine_stress > /tmp/realm-build2.log 2>&1 || { grep -E "error" -A3 /tmp/realm-build2.log | head -40; exit 1; }
  for t in test_engine test_engine_stress; do
    # what the tests need, not 90% of the GPU (the engine-bench and serve runs below take that)
    REALM_CUDA_MEM_MB=${REALM_CUDA_MEM_MB:-16384} REALM_TEST_BACKEND=cuda timeout 300 $B/tests/$t > $OUT/serve_$t.txt 2>&1
    echo "$t on cuda: rc=$? $(grep -E '^\[  (PASSED|FAILED) \]' $OUT/serve_$t.txt | tr '\n' ' ')"
    grep -E "FAILED|Failure|error" $OUT/serve_$t.txt | head -10
  done
  mkdir -p /tmp/models
  for spec in ${SERVE_BENCH:-llama-3.2-1b:q4_k_m llama-3-8b:q4_k_m}; do
    sh=${spec%%:*} ty=${spec##*:}; f=/tmp/models/$sh-$ty.gguf
    [ -f $f ] || $B/realm synth --arch $sh --type $ty -o $f > /dev/null || exit 1
    timeout 300 $B/realm engine-bench $f --device cuda --conc ${SERVE_CONC:-1,8,32,64} \
      --prompt 128 --gen 128 --shared 96 --budget 512 2>&1 | tail -n 12
  done
  M=/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf
  # the first half may have come in the call before (kept in /tmp/models while the machine is warm)
  [ -f $ROOT/.model1/part ] && cp $ROOT/.model1/part /tmp/models/part1
  [ -f /tmp/models/part1 ] && [ -f $ROOT/.model2/part ] && cat /tmp/models/part1 $ROOT/.model2/part > $M
  want=$(grep -oE 'REALM_MODEL_SHA256="[0-9a-f]+"' $ROOT/scripts/lib.sh | cut -d'"' -f2)
  if [ -f $M ] && [ "$(sha256sum $M | cut -d' ' -f1)" = "$want" ]; then
    if $B/realm serve --help 2>&1 | grep -q "usage: realm serve"; then
      for dev in cuda cpu; do
        timeout 300 python3 $ROOT/tests/cuda/serve_check.py --bin $B/realm --model $M --device $dev --streams ${SERVE_STREAMS:-64}
      done
    else
      echo "serve: the server was not built (no libwebsockets/sqlite .debs in .debs/)"
    fi
  else
    echo "serve: the default model's two halves (.model1/part, now or in the call before, and .model2/part) are not both here: serve checks skipped"
  fi
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

# kv: what the KV cache's element type costs or gains, f16 against f32, on
# the models of $KV_MODELS (default the 1B and 8B Q4_K_M): realm_bench_cuda's
# decode1 and 64 streams (short contexts) and a 512-context mixed pass, then
# engine-bench with $KV_CONC (64) requests of $KV_PROMPT (1024) + 128 tokens,
# where attention reads a long KV. $KV_ROUNDS (2) rounds, the order rotating.
if [ "$PHASE" = kv ]; then
  mkdir -p /tmp/models
  for spec in ${KV_MODELS:-llama-3.2-1b:q4_k_m llama-3-8b:q4_k_m}; do
    sh=${spec%%:*} ty=${spec##*:}; f=/tmp/models/$sh-$ty.gguf
    [ -f $f ] || $B/realm synth --arch $sh --type $ty -o $f > /dev/null || exit 1
    for i in $(seq 1 ${KV_ROUNDS:-2}); do
      for kv in $([ $((i % 2)) = 1 ] && echo "f16 f32" || echo "f32 f16"); do
        echo "$spec KV $kv: $(timeout 120 $B/realm_bench_cuda $f --device cuda --kv-type $kv --steps 64 --decode-only | grep -oE 'decode1_tok_s=[0-9.]+') $(timeout 120 $B/realm_bench_cuda $f --device cuda --kv-type $kv --steps 32 --streams 64 | grep -oE 'agg64_tok_s=[0-9.]+') $(timeout 120 $B/realm_bench_cuda $f --device cuda --kv-type $kv --mixed 32 | grep -oE 'mixed32_pass_ms=[0-9.]+')"
      done
    done
    for i in $(seq 1 ${KV_ROUNDS:-2}); do
      for kv in $([ $((i % 2)) = 1 ] && echo "f16 f32" || echo "f32 f16"); do
        echo "$spec KV $kv engine-bench: $(timeout 300 $B/realm engine-bench $f --device cuda --kv-type $kv --conc ${KV_CONC:-64} --prompt ${KV_PROMPT:-1024} --gen 128 --shared 0 --budget 2048 2>&1 | tail -n 1)"
      done
    done
  done
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

# ops: the per-op test alone, once per setting in $OPS_ENVS (space-separated;
# commas join several variables of one setting), for bisecting a failing row.
if [ "$PHASE" = ops ]; then
  for e in ${OPS_ENVS:-REALM_CUDA_NONE=0}; do
    n=$(env ${e//,/ } timeout 300 $B/tests/test_cuda_ops 2>&1 | tee $OUT/ops_$(echo $e | tr -c 'A-Za-z0-9_\n' _).txt | grep -E "FAIL \|" )
    echo "$e: $(echo "$n" | grep -c 'FAIL |') rows FAIL${n:+
$n}"
  done
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

# sanitize: the per-op and whole-model tests under compute-sanitizer, each
# tool of $SAN_TOOLS (default: memcheck with device leak checks, racecheck
# and synccheck for shared memory and barriers, initcheck for reads of
# device memory nothing wrote) on the per-op tests matching each cmocka
# pattern of $SAN_FILTER (e.g. "test_attention test_mmq"; default: all of
# them in one run) and, for memcheck and initcheck, the whole-model test.
# Each run: its error summary, or "timeout" after $SAN_TIMEOUT s (240); the
# full reports in $OUT/san_*.txt.
if [ "$PHASE" = sanitize ]; then
  export REALM_CUDA_MEM_MB=${REALM_CUDA_MEM_MB:-8192} # what the tests need, not 90% of the GPU
  for tool in ${SAN_TOOLS:-memcheck racecheck synccheck initcheck}; do
    opts="--tool $tool"; [ $tool = memcheck ] && opts="$opts --leak-check full"
    runs=""; for f in ${SAN_FILTER:-all}; do runs="$runs test_cuda_ops:$f"; done
    case $tool in memcheck|initcheck) [ -z "${SAN_FILTER:-}" ] && runs="$runs test_cuda_model:all";; esac
    for run in $runs; do
      t=${run%%:*} f=${run#*:}; log=$OUT/san_${tool}_${t}_$f.txt; t1=$(date +%s)
      flt=""; [ $f != all ] && flt="REALM_TEST_FILTER=$f"
      env $flt timeout ${SAN_TIMEOUT:-240} compute-sanitizer $opts $B/tests/$t > $log 2>&1
      rc=$?; [ $rc = 124 ] && rc="124 (timeout)"
      echo "$tool $t $f: rc=$rc, $(( $(date +%s) - t1 )) s, $(grep -E 'ERROR SUMMARY|LEAK SUMMARY|RACECHECK SUMMARY' $log | tr '\n' ' ')$(grep -cE 'FAIL \|' $log) FAIL rows"
      grep -E "^========= [A-Z]" $log | grep -vE "SUMMARY|COMPUTE-SANITIZER" | cut -c1-200 | sort | uniq -c | head -8
    done
  done
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

if [ "$PHASE" = profile ]; then
  # PROF_TYPE may name several files ("q4_k_m q8_0"); PROF_LAYERS=N profiles
  # an N-layer model of the 8B shape (ncu's replay saves and restores what a
  # kernel may write: the full 8B's 5 GB timed it out)
  for t in ${PROF_TYPE:-q4_k_m}; do
    mkdir -p /tmp/models; f=/tmp/models/llama-3-8b-$t${PROF_LAYERS:+-L$PROF_LAYERS}.gguf
    [ -f $f ] || $B/realm synth --arch llama-3-8b --type $t ${PROF_LAYERS:+--layers $PROF_LAYERS} -o $f > /dev/null || exit 1
    if [ -n "${PROF_PREFILL:-}" ]; then
      # the kernels of one PROF_PREFILL-row prefill pass (the warm-up pass:
      # first-call costs are host time, not kernel time)
      timeout 300 ncu --clock-control none --csv --page raw \
        --metrics gpu__time_duration.sum,dram__bytes_read.sum --launch-count 1600 \
        $B/realm_bench_cuda $f --device cuda --prefill $PROF_PREFILL > $OUT/ncu_prefill.csv 2> /tmp/ncu.err
      python3 $ROOT/bench/cuda/ncu_steps.py $OUT/ncu_prefill.csv --largest || tail -5 /tmp/ncu.err
    fi
    if [ "${PROF_DECODE:-1}" = 1 ]; then
      wall=$(timeout 120 $B/realm_bench_cuda $f --device cuda --steps 64 --streams 1 | grep -oE 'step_ms=[0-9.]+' | cut -d= -f2)
      echo "graphs on, batch 1: step_ms=$wall"
      # the 16-row prompt and the first warm-up steps are skipped (~900 kernels)
      timeout 300 ncu --clock-control none --csv --page raw --metrics gpu__time_duration.sum,dram__bytes_read.sum \
        --launch-skip 900 --launch-count 1000 \
        $B/realm_bench_cuda $f --device cuda --steps 1 --streams 1 > $OUT/ncu_decode.csv 2> /tmp/ncu.err
      python3 $ROOT/bench/cuda/ncu_steps.py $OUT/ncu_decode.csv $wall || tail -5 /tmp/ncu.err
    fi
    # stall sections of one kernel: PROF_KERNEL (default the staged mat-vec at
    # batch 1; k_mmq with PROF_STREAMS=64 for the tile kernel), PROF_COUNT
    # launches after PROF_SKIP; PROF_NAME_BASE=demangled matches template
    # arguments too, spelled as in 'k_mmv_s<(int)14, (int)1>' (PROF_KERNEL=
    # 'k_mmv_s<\(int\)14': the Q6_K staged mat-vec)
    # PROF_SECTIONS replaces the sections; PROF_CSV=1 writes every metric of
    # every launch to $OUT/ncu_kernel_$t.csv (bench/cuda/ncu_table.py reads it)
    ext=txt; [ -n "${PROF_CSV:-}" ] && ext=csv
    secs=""; for s in ${PROF_SECTIONS:-SpeedOfLight Occupancy WarpStateStats LaunchStats}; do secs="$secs --section $s"; done
    timeout ${PROF_TIMEOUT:-240} ncu --clock-control none --kernel-name-base ${PROF_NAME_BASE:-function} \
      -k regex:${PROF_KERNEL:-k_mmv_s} --launch-skip ${PROF_SKIP:-200} --launch-count ${PROF_COUNT:-2} $secs \
      ${PROF_CSV:+--csv --page raw} $B/realm_bench_cuda $f --device cuda ${PROF_ARGS:---steps 2 --streams ${PROF_STREAMS:-1}} 2>&1 |
      grep -vE "^==PROF==|^BENCH" > $OUT/ncu_kernel_$t.$ext
    if [ -n "${PROF_CSV:-}" ]; then
      python3 $ROOT/bench/cuda/ncu_table.py $OUT/ncu_kernel_$t.csv
    else
      grep -E "k_mm|k_att|Duration|Throughput|Registers|Achieved Occ|Block Size|Grid Size|Waves|Theoretical Occ|Warp Cycles|Shared Memory|Block Limit|stalled" $OUT/ncu_kernel_$t.txt | cut -c1-400 | head -40
    fi
  done
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

if [ "$PHASE" = ab ]; then
  echo "== per-op correctness (CUDA vs CPU backend) =="
  for pass in 1 2; do
    $B/tests/test_cuda_ops 2>&1 | grep -E "^\||FAILED|PASSED|SKIP" > $OUT/ops$pass.txt
    grep -vE "PASS \|$" $OUT/ops$pass.txt | grep -vE "^\| op "
    echo "(pass $pass: $(grep -c 'PASS |' $OUT/ops$pass.txt) PASS, $(grep -c 'FAIL |' $OUT/ops$pass.txt) FAIL)"
    grep -q 'FAIL |' $OUT/ops$pass.txt || break
  done
  echo "== whole-model correctness =="
  REALM_CUDA_TEST_BIG=1 timeout 400 $B/tests/test_cuda_model 2>&1 | grep -vE "^\[ (RUN|       OK) " | tee $OUT/model.txt
  mkdir -p /tmp/models; f=/tmp/models/llama-3-8b-q4_k_m.gguf
  [ -f $f ] || $B/realm synth --arch llama-3-8b --type q4_k_m -o $f > /dev/null || exit 1
  R="timeout 120 $B/realm_bench_cuda $f --device cuda"
  # host time per graph-launched pass against the graph's GPU time
  for S in 1 64; do REALM_CUDA_HOST_TIME=1 $R --steps 64 --streams $S 2>&1 | grep -E "^BENCH|host time"; done
  # the A/B of the moment: the committed CUDA backend (old) against the
  # working tree (new) and the working tree under each setting of $AB_ENVS
  # (space-separated; commas join several variables of one setting), on the
  # 8B Q4_K_M and Q8_0, the order rotating from round to round
  f8=/tmp/models/llama-3-8b-q8_0.gguf
  [ -f $f8 ] || $B/realm synth --arch llama-3-8b --type q8_0 -o $f8 > /dev/null || exit 1
  wait $REF_PID; tail -1 /tmp/realm-ref-build.log
  OLD=/tmp/realm-ref/build-cuda-dev/realm_bench_cuda
  V=(old new ${AB_ENVS:-})
  run_v() {
    local v=$1; shift
    case $v in
      old) timeout 120 $OLD "$@" ;;
      new) timeout 120 $B/realm_bench_cuda "$@" ;;
      *) env ${v//,/ } timeout 120 $B/realm_bench_cuda "$@" ;;
    esac
  }
  for m in $f $f8; do
    if [ "${AB_DECODE:-1}" = 1 ]; then
      echo "A/B $(basename $m): decode1 x3 per variant"
      for i in 1 2 3; do
        for k in $(seq 0 $(( ${#V[@]} - 1 ))); do
          v=${V[$(( (k + i) % ${#V[@]} ))]}
          echo "$v $(run_v $v $m --device cuda --steps 64 --decode-only 2>&1 | grep -oE 'decode1_tok_s=[0-9.]+')"
        done
      done
    fi
    echo "A/B $(basename $m): prefill and aggregate decode per variant"
    for v in "${V[@]}"; do
      echo "$v $(run_v $v $m --device cuda --steps 32 2>&1 | grep -oE '(prefill[0-9]+|agg(8|32|64))_tok_s=[0-9.]+' | tr '\n' ' ')"
    done
    # aggregate decode at each stream count of $AB_STREAMS alone
    [ -n "${AB_STREAMS:-}" ] && for v in "${V[@]}"; do
      echo "$v $(for S in $AB_STREAMS; do run_v $v $m --device cuda --steps 32 --streams $S 2>&1 | grep -oE 'agg[0-9]+_tok_s=[0-9.]+'; done | tr '\n' ' ')"
    done
    # mixed passes (D decode rows beside a prompt chunk) for each D of
    # $AB_MIXED, median of three (old is left out, as below)
    [ -n "${AB_MIXED:-}" ] && for v in "${V[@]:1}"; do
      echo "$v $(for D in $AB_MIXED; do run_v $v $m --device cuda --mixed $D 2>&1 | grep -oE 'mixed[0-9]+_pass_ms=[0-9.]+'; done | tr '\n' ' ')"
    done
    # prefill sizes of $AB_PREFILL alone, median of three (the committed
    # bench may lack --prefill: old is left out)
    [ -n "${AB_PREFILL:-}" ] && for v in "${V[@]:1}"; do
      echo "$v $(for P in $AB_PREFILL; do run_v $v $m --device cuda --prefill $P 2>&1 | grep -oE 'prefill[0-9]+_tok_s=[0-9.]+'; done | tr '\n' ' ')"
    done
  done
  # where a step of $AB_PROF_STREAMS streams goes, op by op, per variant
  [ -n "${AB_PROF_STREAMS:-}" ] && for m in $f $f8; do
    for v in "${V[@]:1}"; do
      echo "== op profile, $AB_PROF_STREAMS streams, $v, $(basename $m) =="
      REALM_CUDA_PROFILE=1 run_v $v $m --device cuda --steps 16 --streams $AB_PROF_STREAMS 2>&1
    done
  done
  # where a 512-row prefill pass goes, op by op (the working tree)
  [ "${AB_PROFILE:-1}" = 1 ] &&
    REALM_CUDA_PROFILE=2 timeout 120 $B/realm_bench_cuda $f --device cuda --prefill 512 2>&1
  echo "total: $(( $(date +%s) - t0 )) s"; exit 0
fi

if [ "$PHASE" != speed ]; then
  echo "== per-op correctness (CUDA vs CPU backend) =="
  $B/tests/test_cuda_ops 2>&1 | grep -E "^\||FAILED|PASSED|SKIP" | tee $OUT/ops.txt | grep -vE "PASS \|$" 
  echo "(ops rows: $(grep -c 'PASS |' $OUT/ops.txt) PASS, $(grep -c 'FAIL |' $OUT/ops.txt) FAIL)"
  echo "== whole-model correctness =="
  REALM_CUDA_TEST_BIG=1 timeout 400 $B/tests/test_cuda_model 2>&1 | grep -vE "^\[ (RUN|       OK) " | tee $OUT/model.txt
  if [ "$PHASE" != all ]; then
    echo "== whole-model correctness with the int8 tile kernel off (REALM_CUDA_MMQ=0) =="
    REALM_CUDA_MMQ=0 REALM_CUDA_TEST_BIG=1 timeout 400 $B/tests/test_cuda_model 2>&1 | grep -vE "^\[ (RUN|       OK) " | tee $OUT/model_mmq.txt
    # the KV cache in f32 (the test's default is f16, the GPU's): these
    # checksums are the ones of the trees before the f16 KV cache
    echo "== whole-model correctness with the KV cache in f32 (REALM_CUDA_TEST_KV=f32) =="
    REALM_CUDA_TEST_KV=f32 REALM_CUDA_TEST_BIG=1 timeout 400 $B/tests/test_cuda_model 2>&1 | grep -vE "^\[ (RUN|       OK) " | tee $OUT/model_kv32.txt
  fi
fi

if [ "$PHASE" != correct ]; then
  echo "== speed =="
  python3 - <<'PY'
import torch
x = torch.empty(4 << 30, dtype=torch.uint8, device='cuda'); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(10): y.copy_(x)
e.record(); torch.cuda.synchronize()
print("BW_GBs=%.0f" % (2 * 10 * x.numel() / (s.elapsed_time(e) / 1e3) / 1e9))
PY
  mkdir -p /tmp/models
  for spec in "llama-3.2-1b q4_k_m" "llama-3-8b q4_k_m" "llama-3-8b q8_0"; do
    set -- $spec
    f=/tmp/models/$1-$2.gguf
    [ -f $f ] || $B/realm synth --arch $1 --type $2 -o $f > /dev/null || echo "synth $spec failed"
    # the weight bytes a decode step reads (the roofline's): every tensor but
    # token_embd where the file has an output.weight (a step reads one
    # embedding row then; a tied table is the LM head and is read whole)
    # (0 where inspect fails, its error on stderr: the model keeps its row, with no
    # share rather than a wrong one)
    $B/realm inspect $f > /tmp/inspect.txt || : > /tmp/inspect.txt
    awk -v f=$f '$1 ~ /^[0-9]+$/ && NF >= 6 { b = $(NF - 1); s += b
        if ($2 == "token_embd.weight") e = b; if ($2 == "output.weight") o = 1 }
        END { n = s > 0 ? s - (o ? e : 0) : 0; print "model bytes", n, f }' /tmp/inspect.txt
    timeout 240 $B/realm_bench_cuda $f --device cuda --steps 64 2>&1 | tail -4 | tee $OUT/bench_default.txt
    echo "tile kernel up to 512 rows: $(REALM_CUDA_MMQ_ROWS=512 REALM_CUDA_MMQ_SB_ROWS=512 timeout 240 $B/realm_bench_cuda $f --device cuda --steps 64 2>&1 | grep -oE 'prefill[0-9]+_tok_s=[0-9.]+' | tr '\n' ' ')"
    [ "$PHASE" = quick ] &&
      echo "tile kernel off: $(REALM_CUDA_MMQ=0 timeout 240 $B/realm_bench_cuda $f --device cuda --steps 64 2>&1 | grep '^BENCH')"
    # where a decode step's time goes, op kind by op kind (graphs off)
    if [ $2 = q4_k_m ]; then
      REALM_CUDA_PROFILE=1 timeout 120 $B/realm_bench_cuda $f --device cuda --steps 16 --decode-only 2>&1 | grep -vE "^BENCH"
      timeout 120 $B/realm_bench_cuda $f --device cuda --steps 32 --streams 64 2>&1 | grep "^BENCH"
      REALM_CUDA_PROFILE=1 timeout 120 $B/realm_bench_cuda $f --device cuda --steps 16 --streams 64 2>&1 | grep -vE "^BENCH"
    fi
    if [ "$PHASE" = quick ] && [ $1 = llama-3-8b ]; then
      echo "A/B decode1: unstaged mat-vec / no fusion / no split attention / no mat-vec sets:"
      for v in REALM_CUDA_MMV_PLAIN=1 REALM_CUDA_NO_FUSE=1 REALM_CUDA_ATT_SPLIT=1 REALM_CUDA_MMV_SET=0; do
        echo "$v $(env $v timeout 120 $B/realm_bench_cuda $f --device cuda --steps 64 --decode-only 2>&1 | tail -1)"
      done
    fi
  done
  if [ -n "${LLAMA_PID:-}" ]; then
    wait $LLAMA_PID; tail -2 /tmp/llama-build.log
    LB=/tmp/llama/llama.cpp/build/bin
    for f in /tmp/models/llama-3.2-1b-q4_k_m.gguf /tmp/models/llama-3-8b-q4_k_m.gguf /tmp/models/llama-3-8b-q8_0.gguf; do
      timeout 120 $LB/llama-bench -m $f -ngl 99 -p 512 -n 128 -r 2 -o md 2>&1 | grep -E "^\||error|failed" | tail -4
      timeout 150 $LB/llama-batched-bench -m $f -ngl 99 -c 8192 -b 2048 -ub 512 -npp 16 -ntg 64 -npl 1,8,32,64 2>&1 | grep -E "^\|"
    done
  fi
fi
echo "total: $(( $(date +%s) - t0 )) s"
