// Loading weights without Python and without executing anything:
//   - PyTorch checkpoint archives (.th, .ckpt, .pt, .pth: torch.save's ZIP
//     format), through the safe pickle reader;
//   - safetensors files (a JSON header, then raw data).
// Both give named tensors that view into the memory-mapped file.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "runtime/weights/pickle.h"
#include "runtime/weights/tensor.h"

namespace stemkit::weights {

using TensorMap = std::map<std::string, Tensor>;

struct Checkpoint {
  std::string path;
  ValuePtr root;  // the unpickled object (a state dict, a demucs package, a Lightning checkpoint...)
};

// Reads a torch.save archive. Throws stemkit::Error naming the file and the
// problem (not a ZIP, the pre-1.6 format, a damaged pickle, a storage that is
// missing or too small...).
Checkpoint load_torch_checkpoint(const std::string& path);

// Every tensor under `value`, named by its dict keys joined with '.' and its
// list indices ("layers.0.weight"), as a state dict names them. Throws
// stemkit::Error naming the file, the tensor and the problem when a tensor's
// view is unusable (a size, stride or offset out of range, an element count
// that would overflow).
TensorMap collect_tensors(const ValuePtr& value);

// The state dict of a checkpoint: the root when it maps names to tensors,
// else the first of "state_dict", "state", "model_state_dict", "model" that does.
// Throws stemkit::Error listing the top-level keys when there is none.
TensorMap state_dict(const Checkpoint& checkpoint);

struct SafetensorsFile {
  std::string path;
  TensorMap tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Reads a safetensors file; the header is validated (its size and nesting,
// dtypes, shapes, offsets inside the data, no overlaps, no name twice) before
// any tensor is made, and only what the format defines is kept from it.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace stemkit::weights
