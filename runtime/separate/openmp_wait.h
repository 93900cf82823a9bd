// OpenMP's idle workers on a CPU-only libtorch whose BLAS runs threads of its
// own (Debian's libtorch with OpenBLAS' pthreads build).
//
// After each parallel region libgomp's workers spin before they sleep
// (OMP_WAIT_POLICY's default). Between ATen's operators that costs little,
// but while OpenBLAS' own threads run a GEMM the spinning workers take their
// cores. OMP_WAIT_POLICY=PASSIVE makes them sleep at once, which made
// HTDemucs faster on the CPU (docs/benchmarks.md, "HTDemucs on the CPU:
// OpenMP's idle workers asleep"). libgomp reads the variable
// when the process starts, before main(), so a process cannot set it for
// itself: it has to start again with it.
#pragma once

#include "runtime/plan/execution_plan.h"
#include "runtime/separate/environment.h"

namespace stemkit::separate {

// Whether this process is one that gains: libtorch built without GPU support,
// and a BLAS with threads of its own (OpenBLAS' openblas_get_parallel() == 1).
bool blas_threads_contend_with_openmp();

// Starts this program again (the same binary, arguments and environment, plus
// OMP_WAIT_POLICY=PASSIVE) when blas_threads_contend_with_openmp() and the
// user has not set OMP_WAIT_POLICY (any value they set is theirs). Call it
// first thing in main(), before anything is read from stdin or written.
// Returns when it does not restart, or when exec fails (then the run goes on
// as it is).
void restart_with_passive_openmp(const Environment& env, char** argv);

// For --explain's "cpu threads" line: the count, and how idle workers wait and why.
plan::Reasoned cpu_threads_reason(const Environment& env, int threads);

}  // namespace stemkit::separate
