#!/usr/bin/env bash
# On the GPU machine: build the CUDA runtime and `separate`, check HTDemucs
# against the patched upstream with the official architecture, and benchmark
# both side by side on one track and one set of weights. Logs and results go
# to $OUT (the device tool's folder) or ./gpu-out.
#
#   tools/gpu/htdemucs-run.sh build      # unpack the carried .debs, configure, build (build-cuda/)
#   tools/gpu/htdemucs-run.sh parity     # reference data (full config) and the GPU tests
#   tools/gpu/htdemucs-run.sh roformer-parity  # the same for viperx's BS-RoFormer architecture
#   tools/gpu/htdemucs-run.sh profile    # where upstream's forward spends GPU time (torch.profiler)
#   tools/gpu/htdemucs-run.sh bench      # upstream apply_model and separate --bench, one track
#   tools/gpu/htdemucs-run.sh mel-parity       # Kim's Mel-Band RoFormer architecture against upstream
#   tools/gpu/htdemucs-run.sh roformer-bench  # the same for BS-RoFormer: MSST demix against separate --bench
#
# Needs, carried from the development machine: .debs/ (tools/gpu/fetch-debs.sh),
# .deps/py (einops, julius, openunmix) and .deps/demucs-patched (the patched
# demucs package), both made by tools/gpu/stage-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-gpu-out}
mkdir -p "$out"
work=${STEMKIT_GPU_WORK:-/tmp/stemkit-gpu}
mkdir -p "$work"
eval "$(tools/gpu/unpack-debs.sh)"
export PYTHONUNBUFFERED=1
demucs=.deps/demucs-patched
deps=.deps/py

# The official architecture with random weights, and upstream's outputs (once per machine).
ensure_full() {
  [ -f "$work/full/full.th" ] || python3 tools/fixtures/make_htdemucs_fixtures.py --demucs "$demucs" --deps "$deps" \
    --out "$work/full" --config full --device cuda --patchmgr build-cuda/patchmgr/patchmgr > "$out/fixture_full.log" 2>&1
}

case "${1:-}" in
  build)
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; } | tee "$out/machine.txt"
    torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
    cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
      -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG_EXECUTABLE" -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 \
      > "$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
    cmake --build build-cuda --target separate runtime_tests runtime_gpu_tests -j "$(nproc)" > "$out/build.log" 2>&1 \
      || { grep -E "error|Error" -A5 "$out/build.log" | head -60; exit 1; }
    echo "build: ok"
    ;;
  parity)
    python3 tools/fixtures/make_htdemucs_fixtures.py --demucs "$demucs" --deps "$deps" --out "$work/full" \
      --config full --device cuda --patchmgr build-cuda/patchmgr/patchmgr 2>&1 | tee "$out/fixture_full.log"
    STEMKIT_HTDEMUCS_FULL="$work/full" build-cuda/tests/runtime/runtime_gpu_tests 2>&1 | tee "$out/gpu_tests.log" | grep -E "rel. L2|OK|FAILED|SKIPPED|PASSED|stemkit:"
    build-cuda/tests/runtime/runtime_tests --gtest_brief=1 > "$out/runtime_tests_cuda_build.log" 2>&1 && echo "runtime_tests (CUDA build, CPU tests): passed" || { tail -30 "$out/runtime_tests_cuda_build.log"; exit 1; }
    ;;
  profile)
    ensure_full
    python3 tools/bench/profile_htdemucs.py --demucs "$demucs" --deps "$deps" --model "$work/full/full.th" \
      --batch "${PROFILE_BATCH:-8}" 2>&1 | tee "$out/profile.txt"
    ;;
  roformer-parity)
    # viperx's BS-RoFormer architecture against the patched upstream (needs .deps/bs-roformer-patched:
    # git -C upstream/bs-roformer archive HEAD bs_roformer | tar -x -C .deps/bs-roformer-patched,
    # and beartype, rotary_embedding_torch in .deps/py).
    python3 tools/fixtures/make_bs_roformer_fixtures.py --bs-roformer .deps/bs-roformer-patched --deps "$deps" \
      --out "$work/bsr" --config full --device cuda --patchmgr build-cuda/patchmgr/patchmgr 2>&1 | tee "$out/bsr_fixture.log"
    STEMKIT_BS_ROFORMER_FULL="$work/bsr" build-cuda/tests/runtime/runtime_gpu_tests --gtest_filter='BSRoformerGpu*' 2>&1 \
      | tee "$out/bsr_gpu_tests.log" | grep -E "rel. L2|OK|FAILED|SKIPPED|PASSED"
    ;;
  mel-parity)
    # Kim's Mel-Band RoFormer architecture against the patched upstream. The upstream builds
    # its bands with librosa: .deps/py needs librosa and lazy_loader (git archive of their
    # repositories) and decorator.py (Debian's python3-decorator); numba, scipy and joblib
    # are in the GPU machine's Python.
    python3 tools/fixtures/make_mel_band_roformer_fixtures.py --bs-roformer .deps/bs-roformer-patched --deps "$deps" \
      --out "$work/mbr" --config full --device cuda --patchmgr build-cuda/patchmgr/patchmgr 2>&1 | tee "$out/mbr_fixture.log"
    STEMKIT_MEL_BAND_ROFORMER_FULL="$work/mbr" build-cuda/tests/runtime/runtime_gpu_tests --gtest_filter='MelBandRoformerGpu*' 2>&1 \
      | tee "$out/mbr_gpu_tests.log" | grep -E "rel. L2|OK|FAILED|SKIPPED|PASSED"
    ;;
  roformer-bench)
    # viperx's architecture with random weights: upstream (MSST demix, needs .deps/msst/model_utils.py:
    # MSST's utils/model_utils.py) and separate --bench, the same track and weights.
    [ -f "$work/bsr/full.yaml" ] || python3 tools/fixtures/make_bs_roformer_fixtures.py --bs-roformer .deps/bs-roformer-patched \
      --deps "$deps" --out "$work/bsr" --config full --device cuda --patchmgr build-cuda/patchmgr/patchmgr > "$out/bsr_fixture.log" 2>&1
    seconds=${SECONDS_OF_AUDIO:-180}
    [ -f "$work/track.wav" ] || python3 -c "import sys; sys.path.insert(0, 'tools/bench'); import upstream_demucs_bench as u; u.write_track('$work/track.wav', $seconds)"
    if [ -z "${SKIP_UPSTREAM:-}" ]; then
      python3 tools/bench/upstream_roformer_bench.py --bs-roformer .deps/bs-roformer-patched --deps "$deps" \
        --msst-utils .deps/msst/model_utils.py --kwargs "$work/bsr/full.json" --checkpoint "$work/bsr/full.ckpt" \
        --track "$work/track.wav" --precisions "${UPSTREAM_PRECISIONS:-fp16,fp32,bf16}" \
        --batch-sizes "${UPSTREAM_BATCHES:-1,2,4}" --out "$out/bsr_upstream.json" 2>&1 | tee "$out/bsr_upstream.log"
    fi
    build-cuda/runtime/separate/separate --bench "$work/track.wav" -n "$work/bsr/full.yaml" --checkpoint "$work/bsr/full.ckpt" \
      --device cuda --bench-precisions "${PRECISIONS:-fp16,bf16,fp32}" --bench-batch-sizes "${BATCHES:-1,2,4,8}" \
      --bench-graphs "${GRAPHS:-on,off}" --json "$out/bsr_separate_bench.json" 2>&1 | tee "$out/bsr_separate_bench.txt"
    ;;
  debug)
    # The bench's last steps under cuda-gdb: a backtrace of every thread if it crashes.
    ensure_full
    cuda-gdb -q -batch -ex "set pagination off" -ex run -ex "bt 6" -ex 'x/8a $sp' --args \
      build-cuda/runtime/separate/separate --bench -n "$work/full/full.th" --device cuda --bench-seconds 20 \
      --bench-precisions fp32 --bench-batch-sizes 4 --bench-graphs on --json "$out/debug_bench.json" \
      > "$out/debug.txt" 2>&1 || true
    grep -v "^\[New Thread\|^\[Thread\|^warning: Cuda" "$out/debug.txt" | tail -30
    ;;
  separate)
    # The user's path: a song in, four stems out, on the GPU.
    ensure_full
    [ -f "$work/track.wav" ] || python3 -c "import sys; sys.path.insert(0, 'tools/bench'); import upstream_demucs_bench as u; u.write_track('$work/track.wav', 180)"
    build-cuda/runtime/separate/separate "$work/track.wav" -n "$work/full/full.th" --device cuda -b 8 --precision bf16 \
      -o "$work/separated" --json "$out/separate_run.json" 2>&1 | tail -5
    ls -la "$work/separated/full/track"
    ;;
  bench)
    ensure_full
    seconds=${SECONDS_OF_AUDIO:-180}
    if [ -z "${SKIP_UPSTREAM:-}" ]; then
      python3 tools/bench/upstream_demucs_bench.py --demucs "$demucs" --deps "$deps" --model "$work/full/full.th" \
        --track "$work/track.wav" --write-track --seconds "$seconds" --out "$out/upstream.json" 2>&1 | tee "$out/upstream.log"
    fi
    build-cuda/runtime/separate/separate --bench "$work/track.wav" -n "$work/full/full.th" --device cuda \
      --bench-precisions "${PRECISIONS:-fp32,fp16,bf16}" --bench-batch-sizes "${BATCHES:-1,4,8,16}" \
      --bench-graphs "${GRAPHS:-on,off}" --json "$out/separate_bench.json" 2>&1 | tee "$out/separate_bench.txt"
    ;;
  *)
    echo "usage: $0 build|parity|roformer-parity|mel-parity|roformer-bench|profile|debug|separate|bench" >&2
    exit 2
    ;;
esac
