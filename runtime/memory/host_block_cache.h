// A CPU allocator that keeps libtorch's large host blocks for reuse.
//
// libtorch's default CPU allocator takes every block from malloc, and glibc
// serves anything above 32 MiB (the largest mmap threshold it allows) with a
// fresh mmap that munmap returns on free. A network run on the CPU allocates
// activations of tens to hundreds of MB in every layer of every forward: each
// page of each is faulted in and zeroed by the kernel again (how much of a
// CPU run of HTDemucs that took: docs/benchmarks.md, "HTDemucs on the CPU
// (2026-12-07)"). Forwards of one static shape ask for the
// same sizes every time, so a freed block of a size is what the next request
// of that size gets: after the first forward no page is faulted again.
//
// Blocks from kMinBytes up are rounded up to 2 MiB, aligned to 2 MiB and
// marked MADV_HUGEPAGE (transparent huge pages where the kernel has them in
// "madvise" mode: one fault and one TLB entry per 2 MiB). Smaller requests go
// to the allocator that was installed before. Idle blocks are kept up to a
// bound (kept_bytes_limit), beyond which a freed block is unmapped.
//
// Process-wide, as libtorch's allocator is: plan::ExecutionPlan::host_block_cache
// decides it, the runner installs it before the first forward; never removed
// (blocks it handed out are freed through it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace stemkit::memory {

inline constexpr size_t kMinBytes = size_t{1} << 20;  // smaller blocks: libtorch's allocator

// Installs the cache as libtorch's CPU allocator (once; later calls do nothing).
void install_host_block_cache();
bool host_block_cache_installed();

struct HostBlockCacheStats {
  uint64_t mapped = 0;    // blocks mapped (each a fresh mmap)
  uint64_t reused = 0;    // requests served by a kept block
  size_t kept_bytes = 0;  // idle blocks held now
  size_t kept_bytes_limit = 0;
};
HostBlockCacheStats host_block_cache_stats();

}  // namespace stemkit::memory
