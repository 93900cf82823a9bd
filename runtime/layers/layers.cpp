#include "runtime/layers/layers.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <utility>

namespace stemkit::layers {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) {
  weight = register_parameter("weight", at::empty({out, in}), false);
  if (with_bias) bias = register_parameter("bias", at::empty({out}), false);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) { return at::linear(x, weight, bias); }

ConvImpl::ConvImpl(ConvOptions o) : options(std::move(o)) {
  const size_t dims = options.kernel.size();
  if (dims != 1 && dims != 2) throw std::invalid_argument("layers::Conv: 1 or 2 kernel dimensions");
  auto fill = [&](std::vector<int64_t>& v, int64_t value) {
    if (v.empty()) v.assign(dims, value);
    if (v.size() != dims)
      throw std::invalid_argument("layers::Conv: stride, padding and dilation need one value per kernel dimension");
  };
  fill(options.stride, 1), fill(options.padding, 0), fill(options.dilation, 1);
  std::vector<int64_t> shape = options.transposed ? std::vector<int64_t>{options.in, options.out}
                                                  : std::vector<int64_t>{options.out, options.in};
  shape.insert(shape.end(), options.kernel.begin(), options.kernel.end());
  weight = register_parameter("weight", at::empty(shape), false);
  bias = register_parameter("bias", at::empty({options.out}), false);
}

at::Tensor ConvImpl::forward(const at::Tensor& x) {
  const auto& o = options;
  if (o.kernel.size() == 1)
    return o.transposed ? at::conv_transpose1d(x, weight, bias, o.stride, o.padding, /*output_padding=*/0, /*groups=*/1,
                                               o.dilation)
                        : at::conv1d(x, weight, bias, o.stride, o.padding, o.dilation);
  return o.transposed ? at::conv_transpose2d(x, weight, bias, o.stride, o.padding, /*output_padding=*/0, /*groups=*/1,
                                             o.dilation)
                      : at::conv2d(x, weight, bias, o.stride, o.padding, o.dilation);
}

}  // namespace stemkit::layers
