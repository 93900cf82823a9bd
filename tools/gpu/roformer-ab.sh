#!/usr/bin/env bash
# On the device tool's GPU machine: one build, the BS-RoFormer GPU tests, then an
# A/B matrix of `separate --bench` rows (fp16, batch 2, graphs, medians of 3, 180 s
# synthetic track, viperx's architecture with random weights), each row with its
# own `separate` options (the plan's fields: --gemm aten, --exact-gelu,
# --seq-kernel, --fused-kernels off, --attention X, --no-graphs), all in one run: device time goes to measuring, not to
# rebuilding per variant. Optionally a kernel trace of the default row (--trace:
# per kernel, 16 s, eager) and the GPU's idle gaps in one run of the timed row
# (--timeline: 180 s, graphs on; tools/bench/trace_summary.py --timeline).
#
#   tools/gpu/roformer-ab.sh [--trace] [--timeline] [--demucs] LABEL[:OPTION...] ...
#   e.g. tools/gpu/roformer-ab.sh baseline aten-gemm:--gemm=aten seq:--seq-kernel baseline
# (The GPU tests compare every path of the plan with its reference themselves.)
# --no-tests skips the GPU tests (a second call on a machine still warm from a
# first: its build and its .bench/ reference data are kept and reused).
# --demucs adds an HTDemucs row (the official architecture with random weights,
# fp16, batch 8, graphs) under each variant's options (a RoFormer-only option such as
# --gemm is refused there, and the row says so); it needs .deps/demucs-patched
# and julius and openunmix in .deps/py (tools/gpu/htdemucs-run.sh says how).
#
# Needs, carried (run: carry [".deps", ".debs"]): .debs/ (tools/gpu/fetch-debs.sh),
# .deps/py, .deps/bs-roformer-patched (for the fixture's upstream side; made by
# tools/gpu/stage-deps.sh). Stops starting rows after STEMKIT_AB_SECONDS (default
# 540) so that the device tool's 10-minute limit leaves time to copy the results.
# STEMKIT_AB_BATCH=1,2,4: the rows' batch sizes (default 2); STEMKIT_AB_PRECISION=bf16:
# their precision (default fp16).
# Output in $OUT: build and test logs, ab.txt, dmon.txt, trace-summary.txt, timeline.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
say() { echo "[$(( $(date +%s) - start )) s] $*"; }
out=${OUT:-gpu-out}
mkdir -p "$out"
trace=0
timeline=0
demucs=0
tests=1
while [ $# -gt 0 ]; do
  case "$1" in
    --trace) trace=1; shift ;;
    --timeline) timeline=1; shift ;;
    --demucs) demucs=1; shift ;;
    --no-tests) tests=0; shift ;;
    *) break ;;
  esac
done
eval "$(tools/gpu/unpack-debs.sh)"
export PKG_CONFIG=$PKG_CONFIG_EXECUTABLE PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/machine.txt"
cmake -S . -B build-pm -G Ninja -DSTEMKIT_BUILD_RUNTIME=OFF -DSTEMKIT_BUILD_TESTS=OFF > "$out/pm.log" 2>&1 \
  && cmake --build build-pm >> "$out/pm.log" 2>&1 || { tail -20 "$out/pm.log"; exit 1; }
build-pm/patchmgr/patchmgr build runtime --flavor cuda --allow-mismatch > "$out/build.log" 2>&1 \
  || { grep -B2 -A12 "error" "$out/build.log" | head -80; exit 1; }
say runtime built
[ -f .bench/bs-roformer/full.ckpt ] || python3 tools/fixtures/make_bs_roformer_fixtures.py --bs-roformer .deps/bs-roformer-patched \
  --deps .deps/py --out .bench/bs-roformer --config full --device cuda --patchmgr build-pm/patchmgr/patchmgr > "$out/fixture.log" 2>&1 \
  || { tail -20 "$out/fixture.log"; exit 1; }
if [ "$demucs" = 1 ] && [ ! -f .bench/htdemucs/full.th ]; then
  python3 tools/fixtures/make_htdemucs_fixtures.py --demucs .deps/demucs-patched --deps .deps/py --out .bench/htdemucs \
    --config full --device cuda --patchmgr build-pm/patchmgr/patchmgr > "$out/htdemucs-fixture.log" 2>&1 \
    || { tail -20 "$out/htdemucs-fixture.log"; demucs=0; }
fi
filter='BSRoformerGpu*:RoformerKernelsGpu*:LtGemmGpu*:GraphRunnerGpu*:SeparatorAssemblyGpu*'
[ "$demucs" = 1 ] && filter+=':HTDemucsGpu*'
if [ "$tests" = 1 ]; then
  log="$out/gpu-tests.txt"
  STEMKIT_BS_ROFORMER_FULL=.bench/bs-roformer STEMKIT_HTDEMUCS_FULL=.bench/htdemucs \
    build-cuda/tests/runtime/runtime_gpu_tests --gtest_filter="$filter" > "$log" 2>&1
  grep -E "rel. L2|\[  (PASSED|FAILED) |FAILED" "$log" | grep -v "kernels vs ATen\|lt_linear" | tail -8
fi
say tests done
# Clocks, power and load once a second while the rows run (dmon.txt): whether a
# long row runs at lower clocks than a short trace.
nvidia-smi dmon -s pucv -d 1 > "$out/dmon.txt" 2>&1 &
dmon=$!
trap 'kill $dmon 2>/dev/null' EXIT
bench=(build-cuda/runtime/separate/separate --bench --model .bench/bs-roformer/full.yaml
       --checkpoint .bench/bs-roformer/full.ckpt --device cuda --bench-precisions "${STEMKIT_AB_PRECISION:-fp16}" --bench-batch-sizes "${STEMKIT_AB_BATCH:-2}")
for spec in "$@"; do
  if [ $(( $(date +%s) - start )) -gt "${STEMKIT_AB_SECONDS:-540}" ]; then echo "skipped $spec (time)" | tee -a "$out/ab.txt"; continue; fi
  IFS=: read -r -a parts <<<"$spec"
  row=$("${bench[@]}" "${parts[@]:1}" --bench-repeats 3 --bench-graphs on 2>&1 | grep -E "^(fp16|bf16|fp32) ")
  echo "${parts[0]} ${parts[*]:1}: $row" | tee -a "$out/ab.txt"
  if [ "$demucs" = 1 ]; then
    row=$(build-cuda/runtime/separate/separate --bench -n .bench/htdemucs/full.th --device cuda "${parts[@]:1}" \
      --bench-precisions fp16 --bench-batch-sizes 8 --bench-graphs on --bench-repeats 3 2>&1 | grep -E "^fp16 |has no meaning for")
    echo "${parts[0]} ${parts[*]:1} (htdemucs): $row" | tee -a "$out/ab.txt"
  fi
done
if [ "$trace" = 1 ]; then
  "${bench[@]}" --bench-repeats 1 --bench-seconds 16 --bench-graphs off --bench-trace "$out/trace" > /dev/null 2>&1
  python3 tools/bench/trace_summary.py "$out/trace-0.json" --top 30 --width 110 > "$out/trace-summary.txt" 2>&1
  python3 tools/bench/trace_summary.py "$out/trace-0.json" --by-op --top 30 --width 150 > "$out/trace-by-op.txt" 2>&1
  head -20 "$out/trace-summary.txt"
  gzip -9 "$out/trace-0.json"
fi
if [ "$timeline" = 1 ]; then
  "${bench[@]}" --bench-repeats 1 --bench-graphs on --bench-trace "$out/timeline" > /dev/null 2>&1
  python3 tools/bench/trace_summary.py "$out/timeline-0.json" --timeline --top 15 --width 120 > "$out/timeline.txt" 2>&1
  head -12 "$out/timeline.txt"
  gzip -9 "$out/timeline-0.json"
fi
say done
