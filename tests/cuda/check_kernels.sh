#!/usr/bin/env bash
# Checks runtime/kernels/roformer_kernels.cu as CUDA with clang on a machine
# without the CUDA toolkit: parsing, templates and kernel launches, for SM 8.0
# (mma.sync, ldmatrix, cp.async paths included), against the header stand-ins in
# tests/cuda/shim. It catches what would fail nvcc's build on the GPU machine
# before device time is spent on it; nvcc there stays the real build (inline PTX
# is only checked by it). Without clang it prints "skipped: ..." and exits 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
clang=${CLANGXX:-}
if [ -z "$clang" ]; then
  for c in clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    command -v "$c" >/dev/null 2>&1 && clang=$c && break
  done
fi
if [ -z "$clang" ]; then
  echo "skipped: no clang++ (Debian: apt-get install clang)"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# nvcc takes `__shared__ alignas(16) T x[...]`; clang wants the alignment first.
sed 's/__shared__ alignas(\([0-9]*\))/alignas(\1) __shared__/' "$root/runtime/kernels/roformer_kernels.cu" > "$out/roformer_kernels.cu"
"$clang" -x cuda --cuda-gpu-arch=sm_80 -nocudainc -nocudalib -fsyntax-only -std=c++17 -Wno-unknown-cuda-version \
  -Wno-unused-command-line-argument -I"$root/tests/cuda/shim" -I"$root" "$out/roformer_kernels.cu"
echo "roformer_kernels.cu passes clang's CUDA check (sm_80, $("$clang" --version | head -1))"
