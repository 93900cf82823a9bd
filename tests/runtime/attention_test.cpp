// The attention policy: its rules as a table, and attend() against a float64
// reference on the CPU for odd sizes.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "runtime/attention/attention.h"
#include "runtime/compat/torch_compat.h"
#include "runtime/error.h"

using namespace stemkit::attention;

namespace {

DeviceInfo nvidia(int major, int minor) {
  DeviceInfo d;
  d.kind = DeviceInfo::Kind::cuda;
  d.major = major;
  d.minor = minor;
  d.name = "test GPU";
  return d;
}

TEST(AttentionPolicy, RulesPerDeviceAndDtype) {
  DeviceInfo rocm;
  rocm.kind = DeviceInfo::Kind::rocm;
  struct Case {
    DeviceInfo device;
    c10::ScalarType dtype;
    int64_t keys;
    Backend want;
  } cases[] = {
      {DeviceInfo{}, at::kFloat, 801, Backend::automatic},  // CPU: libtorch decides
      {DeviceInfo{}, at::kBFloat16, 62, Backend::automatic},
      {rocm, at::kHalf, 801, Backend::flash},  // ROCm -> flash
      {rocm, at::kBFloat16, 62, Backend::flash},
      {rocm, at::kFloat, 801, Backend::efficient},                                               // fp32 never flash
      {nvidia(9, 0), at::kHalf, 801, STEMKIT_HAS_SDPA_CUDNN ? Backend::cudnn : Backend::flash},  // H100, time axis
      {nvidia(9, 0), at::kBFloat16, 62, Backend::efficient},                                     // H100, band axis
      {nvidia(9, 0), at::kFloat, 801, Backend::efficient},
      {nvidia(8, 9), at::kBFloat16, 801, Backend::flash},  // Ada
      {nvidia(8, 0), at::kHalf, 62, Backend::flash},       // A100
      {nvidia(8, 6), at::kFloat, 801, Backend::efficient},
      {nvidia(7, 5), at::kHalf, 801, Backend::efficient},                                          // Turing: no flash
      {nvidia(12, 0), at::kHalf, 4096, STEMKIT_HAS_SDPA_CUDNN ? Backend::cudnn : Backend::flash},  // Blackwell
  };
  for (const auto& c : cases) {
    Choice got = choose(c.device, c.dtype, c.keys, /*head_dim=*/64, std::nullopt);
    EXPECT_EQ(got.backend, c.want) << c.device.describe() << " " << c10::toString(c.dtype) << ": " << got.reason;
    EXPECT_FALSE(got.reason.empty());
  }
  Choice forced = choose(nvidia(9, 0), at::kHalf, 801, 64, Backend::math);
  EXPECT_EQ(forced.backend, Backend::math);
  EXPECT_NE(forced.reason.find("forced"), std::string::npos);
}

TEST(AttentionPolicy, BackendNames) {
  EXPECT_EQ(parse_backend("flash"), Backend::flash);
  EXPECT_EQ(parse_backend("auto"), Backend::automatic);
  EXPECT_EQ(parse_backend("fast"), std::nullopt);
  for (Backend b : {Backend::automatic, Backend::flash, Backend::efficient, Backend::cudnn, Backend::math})
    EXPECT_EQ(parse_backend(name(b)), b);
  EXPECT_EQ(nvidia(9, 0).describe(), "test GPU (SM 9.0)");
}

// A head size a backend's kernels refuse falls back, with the reason: HTDemucs
// with bottom_channels 48 has 6 channels per head ("Invalid backend" on CUDA
// fp32 before the policy knew head sizes).
TEST(AttentionPolicy, HeadSizesABackendRefusesFallBack) {
  Choice fp32 = choose(nvidia(9, 0), at::kFloat, 1000, 6, std::nullopt);
  EXPECT_EQ(fp32.backend, Backend::math) << fp32.reason;
  EXPECT_NE(fp32.reason.find("head size 6"), std::string::npos) << fp32.reason;
  Choice fp32_ok = choose(nvidia(9, 0), at::kFloat, 1000, 12, std::nullopt);  // a multiple of 4
  EXPECT_EQ(fp32_ok.backend, Backend::efficient) << fp32_ok.reason;
  Choice half = choose(nvidia(8, 0), at::kHalf, 1000, 12, std::nullopt);  // flash wants multiples of 8
  EXPECT_EQ(half.backend, Backend::math) << half.reason;
  Choice big = choose(nvidia(8, 0), at::kHalf, 1000, 512, std::nullopt);  // flash: at most 256
  EXPECT_EQ(big.backend, available(Backend::efficient) ? Backend::efficient : Backend::math) << big.reason;
  EXPECT_NE(big.reason.find("flash takes no head size 512"), std::string::npos) << big.reason;
  if (STEMKIT_HAS_SDPA_CUDNN) {
    Choice cudnn =
        choose(nvidia(9, 0), at::kBFloat16, 801, 40, std::nullopt);  // cuDNN and flash: 40 is a multiple of 8
    EXPECT_EQ(cudnn.backend, Backend::cudnn) << cudnn.reason;
  }
  EXPECT_TRUE(takes(Backend::math, at::kFloat, 6));
  EXPECT_FALSE(takes(Backend::flash, at::kFloat, 64));
  // Forced is forced: no fallback.
  EXPECT_EQ(choose(nvidia(9, 0), at::kFloat, 1000, 6, Backend::efficient).backend, Backend::efficient);
}

TEST(AttentionPolicy, DecisionLogIsSharedByCopiesOfAPolicy) {
  Policy policy;
  Policy copy = policy;
  at::Tensor q = at::randn({1, 2, 5, 8});
  attend(copy, q, q, q);
  const auto entries = policy.log->entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_NE(entries[0].shape.find("CPU, Float, keys < 512, head 8"), std::string::npos) << entries[0].shape;
  EXPECT_EQ(entries[0].backend, "auto");
  EXPECT_FALSE(entries[0].reason.empty());
  Policy other;  // a policy of its own: its own log
  EXPECT_TRUE(other.log->entries().empty());
}

// softmax(q kᵀ s) v in float64, written out element by element: the reference.
at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double s) {
  auto q64 = q.to(at::kDouble), k64 = k.to(at::kDouble), v64 = v.to(at::kDouble);
  auto out = at::zeros({q.size(0), q.size(1), q.size(2), v.size(3)}, at::kDouble);
  auto qa = q64.accessor<double, 4>(), ka = k64.accessor<double, 4>(), va = v64.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < q.size(0); ++b)
    for (int64_t h = 0; h < q.size(1); ++h)
      for (int64_t i = 0; i < q.size(2); ++i) {
        std::vector<double> w(k.size(2));
        double top = -1e300, sum = 0;
        for (int64_t j = 0; j < k.size(2); ++j) {
          double dot = 0;
          for (int64_t d = 0; d < q.size(3); ++d) dot += qa[b][h][i][d] * ka[b][h][j][d];
          w[j] = dot * s;
          top = std::max(top, w[j]);
        }
        for (auto& x : w) sum += (x = std::exp(x - top));
        for (int64_t j = 0; j < k.size(2); ++j)
          for (int64_t d = 0; d < v.size(3); ++d) oa[b][h][i][d] += w[j] / sum * va[b][h][j][d];
      }
  return out;
}

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b).norm().item<double>() / b.norm().item<double>();
}

TEST(Attention, MatchesFloat64OnTheCpuForOddSizes) {
  Policy policy;
  at::manual_seed(3);
  for (auto [b, h, n, m, d] : {std::tuple{1, 1, 1, 1, 1}, {3, 5, 17, 29, 13}, {2, 8, 33, 33, 64}, {1, 3, 100, 7, 24}}) {
    at::Tensor q = at::randn({b, h, n, d}), k = at::randn({b, h, m, d}), v = at::randn({b, h, m, d});
    SCOPED_TRACE(testing::Message() << "b=" << b << " h=" << h << " n=" << n << " m=" << m << " d=" << d);
    at::Tensor want = reference(q, k, v, 1.0 / std::sqrt(double(d)));
    EXPECT_LT(rel_l2(attend(policy, q, k, v), want), 1e-5);
    EXPECT_LT(rel_l2(attend_math(q, k, v), want), 1e-5);
    EXPECT_LT(rel_l2(attend(policy, q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble)), want), 1e-12);
    EXPECT_LT(rel_l2(attend(policy, q, k, v, 0.3), reference(q, k, v, 0.3)), 1e-5);
    EXPECT_EQ(attend(policy, q, k, v).sizes(), (std::vector<int64_t>{b, h, n, d}));
  }
  ASSERT_FALSE(policy.log->entries().empty());
  EXPECT_EQ(policy.log->entries()[0].shape.rfind("CPU, ", 0), 0u) << policy.log->entries()[0].shape;
}

TEST(Attention, BadShapesAreRefused) {
  at::Tensor q = at::randn({2, 4, 8}), k = at::randn({1, 2, 5, 8}), v = at::randn({1, 2, 6, 8});
  EXPECT_THROW(attend(Policy{}, q, q, q), std::invalid_argument);
  EXPECT_THROW(attend(Policy{}, k, k, v), std::invalid_argument);
}

TEST(Attention, BackendsOfThisLibtorch) {
  EXPECT_TRUE(available(Backend::math));
  EXPECT_EQ(available(Backend::flash), bool(STEMKIT_HAS_SDPA));
  at::Tensor q = at::randn({1, 2, 5, 8});
  if (!available(Backend::cudnn)) {
    EXPECT_THROW(attend_with(Backend::cudnn, q, q, q), stemkit::Error);
  }
  EXPECT_LT(rel_l2(attend_with(Backend::math, q, q, q), reference(q, q, q, 1.0 / std::sqrt(8.0))), 1e-5);
}

}  // namespace
