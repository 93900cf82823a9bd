#include "runtime/layers/state_dict.h"

#include <torch/nn/module.h>

#include <ATen/ATen.h>

#include <map>
#include <set>

#include "runtime/error.h"

namespace stemkit::layers {
namespace {

at::ScalarType scalar_type(weights::DType d) {
  switch (d) {
    case weights::DType::f64: return at::kDouble;
    case weights::DType::f32: return at::kFloat;
    case weights::DType::f16: return at::kHalf;
    case weights::DType::bf16: return at::kBFloat16;
    case weights::DType::i64: return at::kLong;
    case weights::DType::i32: return at::kInt;
    case weights::DType::i16: return at::kShort;
    case weights::DType::i8: return at::kChar;
    case weights::DType::u8: return at::kByte;
    case weights::DType::boolean: return at::kBool;
  }
  return at::kFloat;
}

// torch's Python names ("float32"), as the checkpoint side prints them.
std::string dtype_name(at::ScalarType t) {
  for (auto d :
       {weights::DType::f64, weights::DType::f32, weights::DType::f16, weights::DType::bf16, weights::DType::i64,
        weights::DType::i32, weights::DType::i16, weights::DType::i8, weights::DType::u8, weights::DType::boolean})
    if (scalar_type(d) == t) return weights::name(d);
  return c10::toString(t);
}

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

namespace {

// A non-owning view of the mapped bytes: valid while the checkpoint is open.
at::Tensor mapped_view(const weights::Tensor& t) {
  auto dtype = scalar_type(t.dtype);
  if (t.numel() == 0) return at::empty(t.shape, at::TensorOptions().dtype(dtype));
  void* base = const_cast<uint8_t*>(t.storage->data);
  at::Tensor storage_view =
      at::from_blob(base, {static_cast<int64_t>(t.storage->numel())}, at::TensorOptions().dtype(dtype));
  return storage_view.as_strided(t.shape, t.stride, t.offset);
}

}  // namespace

at::Tensor to_torch(const weights::Tensor& t) { return mapped_view(t).clone(at::MemoryFormat::Contiguous); }

std::string LoadReport::describe(const std::string& source) const {
  std::string out;
  for (const auto& m : mismatched) out += source + ": mismatch: " + m + "\n";
  for (const auto& m : missing) out += source + ": missing from the checkpoint: " + m + "\n";
  for (const auto& u : unexpected) out += source + ": not in the model: " + u + "\n";
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module, const weights::TensorMap& state, const std::string& source,
                           const LoadOptions& options) {
  LoadReport report;
  std::map<std::string, at::Tensor> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) targets.emplace(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) targets.emplace(item.key(), item.value());

  for (const auto& [name, target] : targets) {
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
      continue;
    }
    const weights::Tensor& t = it->second;
    auto from = scalar_type(t.dtype);
    bool same_shape = at::IntArrayRef(t.shape) == target.sizes();
    bool castable =
        from == target.scalar_type() || (at::isFloatingType(from) && at::isFloatingType(target.scalar_type()));
    if (!same_shape || !castable) {
      report.mismatched.push_back(name + ": checkpoint " + shape_text(t.shape) + " " + weights::name(t.dtype) +
                                  ", model " + shape_text(target.sizes()) + " " + dtype_name(target.scalar_type()));
    } else if (from != target.scalar_type()) {
      report.converted.push_back(name + ": " + weights::name(t.dtype) + " -> " + dtype_name(target.scalar_type()));
    }
  }
  for (const auto& [name, t] : state)
    if (!targets.count(name)) report.unexpected.push_back(name);

  bool refuse = !report.mismatched.empty() || (options.strict && !report.ok());
  if (refuse) throw Error("{}{}: the state dict was not loaded; nothing changed", report.describe(source), source);

  at::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = state.find(name);
    // Straight from the mapped file into the parameter: one copy, not two.
    if (it != state.end()) target.copy_(mapped_view(it->second));
  }
  return report;
}

}  // namespace stemkit::layers
