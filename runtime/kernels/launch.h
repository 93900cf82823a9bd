// What every kernel launcher (roformer_launch.h, htdemucs_launch.h) shares:
// the element type of the tensors passed as plain pointers, and the last
// launch's error. No libtorch, so the .cu files compile with nvcc or hipcc alone.
#pragma once

namespace stemkit::kernels::launch {

enum class DType { f32, f16, bf16 };

// The last launch's error, as text; empty when fine (cudaGetLastError / hipGetLastError).
const char* last_error();

}  // namespace stemkit::kernels::launch
