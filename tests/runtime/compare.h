// The relative L2 error the parity tests report: ||got - want|| / ||want||,
// computed in float64 on the CPU whatever the inputs' dtype and device.
#pragma once

#include <ATen/ATen.h>

namespace stemkit::test {

inline double rel_l2(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.to(at::kCPU, at::kDouble), w = want.to(at::kCPU, at::kDouble);
  return (g - w).norm().item<double>() / w.norm().item<double>();
}

}  // namespace stemkit::test
