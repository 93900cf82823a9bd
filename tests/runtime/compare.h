// What the parity tests share: the relative L2 error they report, and weights
// changed on purpose to show that a comparison sees them.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "runtime/layers/state_dict.h"
#include "runtime/weights/tensor.h"

namespace stemkit::test {

// ||got - want|| / ||want||, computed in float64 on the CPU whatever the inputs' dtype and device.

inline double rel_l2(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.to(at::kCPU, at::kDouble), w = want.to(at::kCPU, at::kDouble);
  return (g - w).norm().item<double>() / w.norm().item<double>();
}

// A copy of `t` times `factor` (plus `add`), as float32, backed by `keep`.
inline weights::Tensor changed(const weights::Tensor& t, double factor, double add, std::vector<float>& keep) {
  at::Tensor v = (layers::to_torch(t).to(at::kFloat) * factor + add).contiguous();
  keep.assign(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
  auto storage = std::make_shared<weights::Storage>();
  storage->data = reinterpret_cast<const uint8_t*>(keep.data());
  storage->bytes = keep.size() * sizeof(float);
  storage->dtype = weights::DType::f32;
  weights::Tensor out = t;
  out.storage = storage;
  out.dtype = weights::DType::f32;
  out.offset = 0;
  int64_t stride = 1;
  for (size_t i = out.shape.size(); i-- > 0;) {
    out.stride[i] = stride;
    stride *= out.shape[i];
  }
  return out;
}

}  // namespace stemkit::test
