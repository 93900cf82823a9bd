#!/usr/bin/env bash
# On the device tool's GPU machine: whether a change left speed alone. Builds
# this tree (build-cuda/) and another commit's (/tmp/before/build-cuda/, from
# .bench/before.tar.gz), makes full-size weights once with the patched upstream
# (viperx's BS-RoFormer architecture, the official HTDemucs; random values),
# then runs the same `separate --bench` rows with both binaries in turns
# (before, after, before, after, ...) so that the GPU's clock drift hits both.
#
#   here:  git archive --format=tar.gz -o .bench/before.tar.gz BASE -- . ':!tests/fixtures'
#   there: tools/gpu/before-after.sh build           # both builds at once, and the weights
#                                                    # (no before.tar.gz: this tree only; STEMKIT_BA_TARGETS=
#                                                    # builds separate alone, without the GPU tests)
#          tools/gpu/before-after.sh bench [ROUNDS] [htdemucs|bs-roformer]  # next call, machine still warm:
#                                                    # the rows (of one model when named)
#          tools/gpu/before-after.sh tests           # this tree's GPU tests, with full-size references
#
# Rows (issue 22's list): HTDemucs fp32 and fp16 at batch 1 and 8; BS-RoFormer fp16
# and bf16 at batch 1, 2 and 4, and low memory; 180 s synthetic track, graphs on,
# medians of 3. Output in $OUT: machine.txt, the logs, before-after.txt (every row
# of every round) and the JSON of each bench.
# Needs, carried (run: carry [".deps", ".debs", ".bench", ".ffmpeg"]): .debs/ (fetch-debs.sh),
# .deps/ (stage-deps.sh), .bench/before.tar.gz; .ffmpeg/ (build-ffmpeg.sh) for
# FFmpeg in both builds (an MP3's decoding in `separate --bench song.mp3`).
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
say() { echo "[$(( $(date +%s) - start )) s] $*"; }
out=${OUT:-gpu-out}
mkdir -p "$out"
work=/tmp/stemkit-before-after
mkdir -p "$work"
eval "$(tools/gpu/unpack-debs.sh)"
export PYTHONUNBUFFERED=1

configure_and_build() {  # source-dir log-name
  local torch_prefix
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  cmake -S "$1" -B "$1/build-cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
    -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG_EXECUTABLE" -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 \
    > "$out/configure-$2.log" 2>&1 || { tail -30 "$out/configure-$2.log"; return 1; }
  cmake --build "$1/build-cuda" --target separate "${@:3}" -j 8 > "$out/build-$2.log" 2>&1 \
    || { grep -E "error|Error" -A5 "$out/build-$2.log" | head -40; return 1; }
}

case "${1:-}" in
  build)
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; } | tee "$out/machine.txt"
    # Without .bench/before.tar.gz, this tree only (a measurement, not a comparison).
    if [ -f .bench/before.tar.gz ]; then
      rm -rf /tmp/before && mkdir -p /tmp/before && tar -xzf .bench/before.tar.gz -C /tmp/before
      configure_and_build /tmp/before before &
      b=$!
    fi
    configure_and_build . after ${STEMKIT_BA_TARGETS-runtime_gpu_tests} &
    a=$!
    [ -z "${b:-}" ] || wait $b || { echo "before: build failed"; exit 1; }
    wait $a || { echo "after: build failed"; exit 1; }
    say built
    [ -f "$work/bsr/full.ckpt" ] || python3 tools/fixtures/make_bs_roformer_fixtures.py --bs-roformer .deps/bs-roformer-patched \
      --deps .deps/py --out "$work/bsr" --config full --device cuda --patchmgr build-cuda/patchmgr/patchmgr > "$out/fixture-bsr.log" 2>&1 \
      || { tail -20 "$out/fixture-bsr.log"; exit 1; }
    [ -f "$work/htdemucs/full.th" ] || python3 tools/fixtures/make_htdemucs_fixtures.py --demucs .deps/demucs-patched \
      --deps .deps/py --out "$work/htdemucs" --config full --device cuda --patchmgr build-cuda/patchmgr/patchmgr \
      > "$out/fixture-htdemucs.log" 2>&1 || { tail -20 "$out/fixture-htdemucs.log"; exit 1; }
    say weights made
    ;;
  bench)
    rounds=${2:-2}
    only=${3:-}
    for r in $(seq 1 "$rounds"); do
      for side in before after; do
        [ "$side" = before ] && bin=/tmp/before/build-cuda/runtime/separate/separate || bin=build-cuda/runtime/separate/separate
        [ -x "$bin" ] || continue  # built without a before
        if [ $(( $(date +%s) - start )) -gt "${STEMKIT_BA_SECONDS:-500}" ]; then say "round $r $side skipped (time)"; continue; fi
        [ "$only" = bs-roformer ] || "$bin" --bench -n "$work/htdemucs/full.th" --device cuda --bench-precisions fp32,fp16 --bench-batch-sizes 1,8 \
          --bench-graphs on --bench-repeats 3 --json "$out/htdemucs-$side-$r.json" 2>&1 | grep -E "^(fp16|fp32) " \
          | sed "s/^/round $r $side htdemucs   /" | tee -a "$out/before-after.txt"
        [ "$only" = htdemucs ] || "$bin" --bench --model "$work/bsr/full.yaml" --checkpoint "$work/bsr/full.ckpt" --device cuda --bench-precisions fp16,bf16 \
          --bench-batch-sizes 1,2,4 --bench-graphs on --bench-low-memory --bench-repeats 3 --json "$out/bsr-$side-$r.json" 2>&1 \
          | grep -E "^(fp16|bf16) " | sed "s/^/round $r $side bs-roformer /" | tee -a "$out/before-after.txt"
      done
    done
    say done
    ;;
  tests)
    # The configuration sweep, run by upstream on this GPU (make_sweep_fixtures.py).
    [ -d "$work/sweep/bs_roformer" ] || python3 tools/fixtures/make_sweep_fixtures.py --demucs .deps/demucs-patched \
      --bs-roformer .deps/bs-roformer-patched --deps .deps/py --out "$work/sweep" --device cuda \
      --patchmgr build-cuda/patchmgr/patchmgr $(PYTHONPATH=.deps/py python3 -c "import librosa.filters" 2>/dev/null || echo --no-mel) \
      > "$out/fixture-sweep.log" 2>&1 || { tail -20 "$out/fixture-sweep.log"; exit 1; }
    STEMKIT_SWEEP="$work/sweep" STEMKIT_BS_ROFORMER_FULL="$work/bsr" STEMKIT_HTDEMUCS_FULL="$work/htdemucs" \
      build-cuda/tests/runtime/runtime_gpu_tests \
      > "$out/gpu-tests.txt" 2>&1
    grep -E "rel. L2|decision|\[  (PASSED|FAILED|SKIPPED) |FAILED" "$out/gpu-tests.txt" | tail -40
    ;;
  *)
    sed -n 2,20p "$0"
    exit 2
    ;;
esac
