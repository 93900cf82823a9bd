// libFuzzer target for the checkpoint readers (runtime/weights): arbitrary
// bytes as a torch.save archive and as a safetensors file must give a
// stemkit::Error or a result, never a crash, a hang or a huge allocation.
//   tests/fuzz/run.sh [seconds]   builds it with clang and runs it on tests/fixtures/weights
#include <cstdint>
#include <string>

#include "runtime/weights/checkpoint.h"
#include "tests/fuzz/memory_file.h"

using namespace stemkit::weights;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const MemoryFile file(data, size);
  if (!file.ok()) return 0;
  const std::string path = file.path();
  // Every tensor a reader returns must be readable where it says it is: the
  // first and last element of each view are read, so AddressSanitizer sees a
  // view that leaves its storage, and a count that wrapped shows as negative.
  auto touch = [](const TensorMap& tensors) {
    for (const auto& [name, t] : tensors) {
      int64_t n = t.numel();
      if (n < 0 || n > kMaxElements) __builtin_trap();
      if (n > 0) (void)(t.at(0) + t.at(n - 1));
    }
  };
  try {
    touch(state_dict(load_torch_checkpoint(path)));
  } catch (const stemkit::Error&) {
  }
  try {
    touch(load_safetensors(path).tensors);
  } catch (const stemkit::Error&) {
  }
  return 0;
}
