#!/usr/bin/env bash
# Compiles runtime/kernels/roformer_kernels.cu as HIP, for an RDNA GPU (gfx1030, 32-lane
# waves) and a CDNA GPU (gfx90a, 64-lane waves): the ROCm builds' kernels, checked on a
# machine with no AMD GPU. Needs hipcc and the device libraries (Debian: apt-get install
# hipcc libamdhip64-dev rocm-device-libs); without them it prints "skipped: ..." and
# exits 0 (ctest reports a skip). ROCm before 5.7 lacks hip/hip_bf16.h: tests/hip/shim
# stands in for it then.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
hipcc=${HIPCC:-hipcc}
if ! command -v "$hipcc" >/dev/null 2>&1; then
  echo "skipped: no hipcc (Debian: apt-get install hipcc libamdhip64-dev rocm-device-libs)"
  exit 0
fi
flags=(-std=c++17 -O2 -x hip -I"$root")
for d in /usr/lib/x86_64-linux-gnu/amdgcn/bitcode /usr/lib/amdgcn/bitcode; do
  [ -d "$d" ] && flags+=(--rocm-device-lib-path="$d") && break
done
have_bf16=no
for d in "${ROCM_PATH:-/opt/rocm}/include" /usr/include; do [ -f "$d/hip/hip_bf16.h" ] && have_bf16=yes; done
[ "$have_bf16" = yes ] || flags+=(-I"$root/tests/hip/shim")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for arch in gfx1030 gfx90a; do
  "$hipcc" "${flags[@]}" --offload-arch="$arch" -c "$root/runtime/kernels/roformer_kernels.cu" -o "$out/$arch.o"
  echo "roformer_kernels.cu compiles as HIP for $arch"
done
