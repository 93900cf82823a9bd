// From checkpoint tensors (runtime/weights) to libtorch: converting views to
// at::Tensor, and loading a state dict into a torch::nn::Module with every
// name, shape and dtype checked and all mismatches reported at once.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "runtime/weights/checkpoint.h"

namespace torch::nn {
class Module;
}

namespace stemkit::layers {

// An owning at::Tensor with the view's dtype, shape, stride and values (copied
// out of the mapped file, contiguous).
at::Tensor to_torch(const weights::Tensor& tensor);

struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the checkpoint
  std::vector<std::string> unexpected;  // in the checkpoint, not in the model
  std::vector<std::string> mismatched;  // "name: checkpoint [4, 2, 3] float16, model [4, 2, 5] float32"
  std::vector<std::string> converted;   // floating-point dtype changes that were applied (fp16 -> fp32, ...)
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string describe(const std::string& source) const;  // every problem, one per line
};

struct LoadOptions {
  bool strict = true;  // missing or unexpected names are errors (else only reported)
};

// Checks every parameter and buffer of `module` against `state` and, only
// when nothing is wrong (or !strict and only names differ), copies the
// values in, converting floating-point dtypes to the module's (checkpoints
// store fp16, models run fp32). Never loads half a state dict: on a problem
// it throws stemkit::Error with describe(source) and changes nothing.
LoadReport load_state_dict(torch::nn::Module& module, const weights::TensorMap& state, const std::string& source,
                           const LoadOptions& options = {});

}  // namespace stemkit::layers
