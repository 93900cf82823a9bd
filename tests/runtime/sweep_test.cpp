// Every configuration of the sweep (tests/fixtures/sweep) against the patched
// upstream on the CPU: the arguments people change when they train their own
// HTDemucs, BS-RoFormer or Mel-Band RoFormer, one at a time from a small base.
#include "tests/runtime/sweep.h"

namespace {

using namespace stemkit;
const std::string kSweep = std::string(STEMKIT_FIXTURES) + "/sweep";

class HTDemucsSweep : public ::testing::TestWithParam<std::string> {};
TEST_P(HTDemucsSweep, MatchesUpstream) {
  test::expect_sweep_case_matches(kSweep, "htdemucs", GetParam(), at::kCPU, 1e-5);
}
INSTANTIATE_TEST_SUITE_P(Cases, HTDemucsSweep, ::testing::ValuesIn(test::sweep_cases(kSweep, "htdemucs")),
                         test::sweep_test_name);

class BSRoformerSweep : public ::testing::TestWithParam<std::string> {};
TEST_P(BSRoformerSweep, MatchesUpstream) {
  test::expect_sweep_case_matches(kSweep, "bs_roformer", GetParam(), at::kCPU, 1e-5);
}
INSTANTIATE_TEST_SUITE_P(Cases, BSRoformerSweep, ::testing::ValuesIn(test::sweep_cases(kSweep, "bs_roformer")),
                         test::sweep_test_name);

class MelBandRoformerSweep : public ::testing::TestWithParam<std::string> {};
TEST_P(MelBandRoformerSweep, MatchesUpstream) {
  test::expect_sweep_case_matches(kSweep, "mel_band_roformer", GetParam(), at::kCPU, 1e-5);
}
INSTANTIATE_TEST_SUITE_P(Cases, MelBandRoformerSweep,
                         ::testing::ValuesIn(test::sweep_cases(kSweep, "mel_band_roformer")), test::sweep_test_name);

// The sweep is there: an empty folder would pass every test above by having none.
TEST(Sweep, HasItsCases) {
  EXPECT_GE(test::sweep_cases(kSweep, "htdemucs").size(), 20u);
  EXPECT_GE(test::sweep_cases(kSweep, "bs_roformer").size(), 15u);
  EXPECT_GE(test::sweep_cases(kSweep, "mel_band_roformer").size(), 15u);
}

}  // namespace
