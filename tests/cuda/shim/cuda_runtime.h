// Minimal stand-ins for the CUDA toolkit's headers, only what
// runtime/kernels/roformer_kernels.cu uses: enough for clang to parse and
// type-check the kernels and their launches (tests/cuda/check_kernels.sh) on a
// machine without the toolkit. Declarations only; nothing here is linked.
#pragma once
#include <__clang_cuda_builtin_vars.h>  // threadIdx, blockIdx, blockDim, gridDim

#include <cstddef>

#define __host__ __attribute__((host))
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
typedef struct CUstream_st* cudaStream_t;
enum cudaError_t { cudaSuccess = 0 };
enum cudaDeviceAttr { cudaDevAttrComputeCapabilityMajor = 75 };
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t);
cudaError_t cudaGetDevice(int*);
cudaError_t cudaDeviceGetAttribute(int*, cudaDeviceAttr, int);
// What clang lowers `kernel<<<grid, block, shared, stream>>>(...)` to, on each side.
cudaError_t cudaConfigureCall(dim3 grid, dim3 block, size_t shared = 0, cudaStream_t stream = 0);
extern "C" unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t shared = 0, void* stream = 0);

__device__ void __syncthreads();
__device__ void __syncwarp(unsigned mask = 0xffffffffu);
__device__ void __trap();
__device__ float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width = 32);
__device__ int __shfl_xor_sync(unsigned mask, int v, int lane_mask, int width = 32);
__device__ int __any_sync(unsigned mask, int predicate);
__device__ size_t __cvta_generic_to_shared(const void*);
__device__ float expf(float);
__device__ float tanhf(float);
__device__ float rsqrtf(float);
__device__ float fmaxf(float, float);
__device__ float fmaf(float, float, float);
