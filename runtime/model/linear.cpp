#include "runtime/model/linear.h"

#include <ATen/ATen.h>

namespace stemkit::model {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) {
  // Registered like nn::Linear's (same names, so state dicts load by name), not trained.
  weight = register_parameter("weight", at::empty({out, in}), false);
  if (with_bias) bias = register_parameter("bias", at::empty({out}), false);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) { return at::linear(x, weight, bias); }

}  // namespace stemkit::model
