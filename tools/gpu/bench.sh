#!/usr/bin/env bash
# On the device tool's GPU machine: build patchmgr, then the runtime through
# `patchmgr build runtime` (CUDA flavor; --allow-mismatch because the machine has
# no upstream checkouts, only the patched packages carried in .deps/), and run
# `patchmgr bench COMPONENT --against-upstream` for each component given (default:
# both), with the placeholders pointed at .deps/. The result files are copied to
# $OUT; copy them into docs/benchmarks/ here and run `patchmgr docs`.
#
#   tools/gpu/bench.sh [demucs] [bs-roformer] [-- extra patchmgr bench options]
#
# Needs, carried from the development machine (run: carry [".deps", ".debs"]):
# .debs/ (tools/gpu/fetch-debs.sh), .deps/py (pure-Python dependencies),
# .deps/demucs-patched, .deps/bs-roformer-patched and .deps/msst/model_utils.py
# (all four made by tools/gpu/stage-deps.sh from local clones).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-gpu-out}
mkdir -p "$out"
eval "$(tools/gpu/unpack-debs.sh)"
export PKG_CONFIG=$PKG_CONFIG_EXECUTABLE PYTHONUNBUFFERED=1

components=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do components+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#components[@]} -gt 0 ] || components=(demucs bs-roformer)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/machine.txt"
cmake -S . -B build-pm -G Ninja -DSTEMKIT_BUILD_RUNTIME=OFF -DSTEMKIT_BUILD_TESTS=OFF > "$out/pm-configure.log" 2>&1 \
  && cmake --build build-pm > "$out/pm-build.log" 2>&1 || { tail -30 "$out"/pm-*.log; exit 1; }
build-pm/patchmgr/patchmgr build runtime --flavor cuda --allow-mismatch 2>&1 | tail -8
pm=build-cuda/patchmgr/patchmgr
for c in "${components[@]}"; do
  case "$c" in
    demucs) vars=(--var demucs=.deps/demucs-patched --var deps=.deps/py) ;;
    bs-roformer) vars=(--var bs_roformer=.deps/bs-roformer-patched --var deps=.deps/py --var msst_utils=.deps/msst/model_utils.py) ;;
    *) vars=() ;;
  esac
  before=$(ls docs/benchmarks/*.json 2>/dev/null || true)
  "$pm" bench "$c" --against-upstream "${vars[@]}" "$@" 2>&1 | tee "$out/bench-$c.txt" | grep -v "^stemkit: attention" | tail -40
  for f in docs/benchmarks/*.json; do
    grep -qxF "$f" <<<"$before" || cp "$f" "$out"/
  done
done
ls "$out"
