#include "runtime/memory/host_block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <unordered_map>
#include <mutex>
#include <new>
#include <vector>

#include "runtime/compat/torch_compat.h"

namespace stemkit::memory {
namespace {

constexpr size_t kHuge = size_t{2} << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

class HostBlockCache final : public c10::Allocator {
 public:
  explicit HostBlockCache(c10::Allocator* small) : small_(small) {
    // Idle blocks up to a quarter of the machine's memory, at most 8 GiB: a
    // forward's activations fit many times on machines that run models on the CPU.
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const size_t physical = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
    limit_ = std::min<size_t>(physical / 4, size_t{8} << 30);
  }

  // libtorch 2.3 made allocate non-const and added copy_data (pure virtual);
  // copy_data, defined on every version, overrides it where it exists.
#if STEMKIT_ALLOCATE_IS_CONST
  c10::DataPtr allocate(size_t n) const override {
#else
  c10::DataPtr allocate(size_t n) override {
#endif
    if (n < kMinBytes) return small_->allocate(n);
    const size_t size = round_up(n, kHuge);
    void* data = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = idle_.find(size);
      if (it != idle_.end() && !it->second.empty()) {
        data = it->second.back();
        it->second.pop_back();
        kept_ -= size;
        ++reused_;
      }
    }
    if (!data) data = map(size);
    std::lock_guard<std::mutex> lock(mutex_);
    live_[data] = size;
    // The context is the data, as raw_allocate (oneDNN's scratch buffers) needs.
    return {data, data, &HostBlockCache::release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &HostBlockCache::release; }

  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

  HostBlockCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {mapped_, reused_, kept_, limit_};
  }

  static HostBlockCache* instance;

 private:
  void* map(size_t size) const {
    // 2 MiB more than asked, so that a 2 MiB-aligned stretch of `size` lies
    // inside; the ends outside it are unmapped again.
    void* raw = mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw), aligned = round_up(start, kHuge);
    if (aligned > start) munmap(raw, aligned - start);
    if (const uintptr_t end = start + size + kHuge; end > aligned + size)
      munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
    void* data = reinterpret_cast<void*>(aligned);
    madvise(data, size, MADV_HUGEPAGE);  // advice only: a kernel without THP ignores it
    std::lock_guard<std::mutex> lock(mutex_);
    ++mapped_;
    return data;
  }

  // Frees a block of either kind: ours (in live_), or the small allocator's
  // (raw_deallocate hands both here).
  static void release(void* data) {
    HostBlockCache& self = *instance;
    size_t size = 0;
    bool keep = false;
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.live_.find(data);
      if (it != self.live_.end()) {
        size = it->second;
        self.live_.erase(it);
        if (self.kept_ + size <= self.limit_) {
          self.idle_[size].push_back(data);
          self.kept_ += size;
          keep = true;
        }
      }
    }
    if (size == 0) {
      if (const c10::DeleterFnPtr small = self.small_->raw_deleter())
        small(data);
      else
        c10::free_cpu(data);
    } else if (!keep)
      munmap(data, size);
  }

  c10::Allocator* small_;
  size_t limit_ = 0;
  mutable std::mutex mutex_;
  mutable std::map<size_t, std::vector<void*>> idle_;  // size -> idle blocks of that size
  mutable std::unordered_map<void*, size_t> live_;     // blocks handed out -> their size
  mutable size_t kept_ = 0;
  mutable uint64_t mapped_ = 0, reused_ = 0;
};

HostBlockCache* HostBlockCache::instance = nullptr;
std::once_flag installed;

}  // namespace

void install_host_block_cache() {
  std::call_once(installed, [] {
    // Never destroyed: tensors that outlive main's locals are freed through it.
    HostBlockCache::instance = new HostBlockCache(c10::GetCPUAllocator());
    c10::SetCPUAllocator(HostBlockCache::instance, /*priority=*/1);
  });
}

bool host_block_cache_installed() { return HostBlockCache::instance != nullptr; }

HostBlockCacheStats host_block_cache_stats() {
  return HostBlockCache::instance ? HostBlockCache::instance->stats() : HostBlockCacheStats{};
}

}  // namespace stemkit::memory
