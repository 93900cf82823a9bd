#include "runtime/separate/openmp_wait.h"

#include <ATen/Context.h>

#include <climits>
#include <cstdlib>
#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <string>

namespace stemkit::separate {

bool blas_threads_contend_with_openmp() {
  // OpenBLAS says how it was built: 0 sequential, 1 its own pthreads, 2 OpenMP
  // (then its GEMMs run in libgomp's workers, which do not spin against them).
  // Other BLAS libraries (MKL in PyTorch's wheels) lack the symbol.
  using GetParallel = int (*)();
  auto get_parallel = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  if (get_parallel == nullptr || get_parallel() != 1) return false;
  // GPU builds are left alone: their runs are mostly on the GPU, where a second
  // start would add to the cold start, and the gain is unmeasured there.
  // (Asked last: it starts the GPU driver.)
  return !at::hasCUDA() && !at::hasHIP();
}

void restart_with_passive_openmp(const Environment& env, char** argv) {
  if (env.omp_wait_policy || !blas_threads_contend_with_openmp()) return;
  // The binary's own path, not /proc/self/exe: the process keeps its name
  // (ps, top, pkill separate) and argv[0] stays the user's.
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0) != 0) return;
  execv(self, argv);
  unsetenv("OMP_WAIT_POLICY");  // exec failed (the binary replaced or deleted since): go on as started
}

plan::Reasoned cpu_threads_reason(const Environment& env, int threads) {
  std::string value = std::to_string(threads) + (threads == 1 ? " thread" : " threads");
  if (!env.omp_wait_policy) return {value, "idle OpenMP workers spin before they sleep (libgomp's default)"};
  value += ", OMP_WAIT_POLICY=" + *env.omp_wait_policy;
  if (blas_threads_contend_with_openmp() && strcasecmp(env.omp_wait_policy->c_str(), "passive") == 0)
    return {value,
            "idle OpenMP workers sleep at once, leaving the cores to OpenBLAS' own threads; separate starts "
            "itself with it when the variable is not set"};
  return {value, "the environment's"};
}

}  // namespace stemkit::separate
