// stemkit-attention: which attention backend the policy picks on this
// machine, and what each backend costs and how exact it is.
//
//   stemkit-attention [batch heads seq dim]     (default 2 8 256 64: BS-RoFormer's heads)
//
// For fp16, bf16 and fp32 on the GPU (or fp32 on the CPU): the policy's
// choice, then every backend alone, with the time per call and the relative
// L2 error against a float64 reference. A backend that cannot run says why.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/attention/attention.h"
#include "runtime/compat/torch_compat.h"
#include "runtime/version.h"

using namespace stemkit::attention;

namespace {

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  auto a64 = a.to(at::kDouble), b64 = b.to(at::kDouble);
  return (a64 - b64).norm().item<double>() / b64.norm().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("%s", stemkit::version_text().c_str());
    return 0;
  }
  int64_t b = 2, h = 8, n = 256, d = 64;
  if (argc == 5) b = std::atoll(argv[1]), h = std::atoll(argv[2]), n = std::atoll(argv[3]), d = std::atoll(argv[4]);
  bool gpu = at::hasCUDA();
  at::Device device = gpu ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  std::printf("libtorch %s, device %s, q/k/v (%lld, %lld, %lld, %lld)\n", stemkit::compat::torch_version(),
              gpu ? query_gpu(0, false).describe().c_str() : "CPU", (long long)b, (long long)h, (long long)n,
              (long long)d);
  at::manual_seed(0);
  auto opts = at::TensorOptions().dtype(at::kDouble).device(device);
  at::Tensor q = at::randn({b, h, n, d}, opts), k = at::randn({b, h, n, d}, opts), v = at::randn({b, h, n, d}, opts);
  at::Tensor reference = attend_math(q, k, v);
  std::vector<at::ScalarType> dtypes =
      gpu ? std::vector<at::ScalarType>{at::kHalf, at::kBFloat16, at::kFloat} : std::vector<at::ScalarType>{at::kFloat};
  std::printf("%-9s %-10s %-9s %10s %10s  %s\n", "dtype", "backend", "policy", "ms/call", "rel_l2", "note");
  for (auto dtype : dtypes) {
    at::Tensor qx = q.to(dtype), kx = k.to(dtype), vx = v.to(dtype);
    DeviceInfo info = gpu ? query_gpu(0, false) : DeviceInfo{};
    Choice choice = choose(info, dtype, n, d, std::nullopt);
    for (Backend backend : {Backend::flash, Backend::efficient, Backend::cudnn, Backend::math}) {
      const char* picked = backend == choice.backend ? "<- policy" : "";
      try {
        at::Tensor out = attend_with(backend, qx, kx, vx);
        at::Tensor last;
        for (int i = 0; i < 5; ++i) last = attend_with(backend, qx, kx, vx);
        last.sum().item<double>();  // waits for the GPU (kernels run in stream order)
        auto start = std::chrono::steady_clock::now();
        const int iters = 50;
        for (int i = 0; i < iters; ++i) last = attend_with(backend, qx, kx, vx);
        last.sum().item<double>();
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / iters;
        std::printf("%-9s %-10s %-9s %10.4f %10.2e\n", c10::toString(dtype), name(backend), picked, ms,
                    rel_l2(out, reference));
      } catch (const std::exception& e) {
        std::string why = e.what();
        std::printf("%-9s %-10s %-9s %10s %10s  %s\n", c10::toString(dtype), name(backend), picked, "-", "-",
                    why.substr(0, why.find('\n')).substr(0, 70).c_str());
      }
    }
    std::printf("%-9s policy: %s (%s)\n", c10::toString(dtype), name(choice.backend), choice.reason.c_str());
  }
  return 0;
}
