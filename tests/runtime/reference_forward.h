// What the RoFormer parity tests share beyond compare.h: a model run again with
// the plan's reference forwards (upstream's blocks, line for line) meets
// upstream's output as closely as the fast paths do, and the fast paths meet it.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "runtime/plan/kernel_plan.h"
#include "tests/runtime/compare.h"

namespace stemkit::test {

// `fast`: the model's output through its fast paths; `want`: upstream's. Leaves
// the model on the reference plan: the caller moves it back if it goes on.
template <class Model>
void expect_reference_forward_meets(Model& model, const at::Tensor& mix, const at::Tensor& fast, const at::Tensor& want,
                                    const std::string& tag, double tolerance = 1e-5) {
  plan::KernelPlan reference;
  reference.reference_forward = true;
  model.to(at::kCPU, at::kFloat, reference);
  at::Tensor plain = model.forward(mix);
  const double plain_err = rel_l2(plain, want), fast_err = rel_l2(fast, plain);
  std::printf("%s: reference forward rel. L2 %.3g against upstream; fast path %.3g against it\n", tag.c_str(),
              plain_err, fast_err);
  EXPECT_LT(plain_err, tolerance);
  EXPECT_LT(fast_err, tolerance);
}

}  // namespace stemkit::test
