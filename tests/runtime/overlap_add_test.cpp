// The overlap-add driver against demucs.apply.apply_model itself (the pinned
// demucs, run by tools/fixtures/make_segment_fixtures.py on a toy model that
// sees its whole input), and the static shapes it promises.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "runtime/layers/state_dict.h"
#include "runtime/segment/overlap_add.h"

using namespace stemkit;

namespace {

const std::string kDir = std::string(STEMKIT_FIXTURES) + "/segment/";

// The toy model of the fixture script: out[s] = (s + 1) x + mean(x) + 0.5 roll(x, 7).
at::Tensor toy(const at::Tensor& x) {
  std::vector<at::Tensor> outs;
  for (int s = 0; s < 3; ++s) outs.push_back((s + 1) * x + x.mean(-1, true) + 0.5 * at::roll(x, {7}, {-1}));
  return at::stack(outs, 1);
}

class ApplyModelParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ApplyModelParity, MatchesDemucs) {
  auto file = weights::load_safetensors(kDir + "apply_model.safetensors");
  std::ifstream in(kDir + "apply_model.json");
  auto meta = nlohmann::json::parse(in);
  const std::string name = GetParam();
  const auto& c = meta["cases"][name];
  segment::DemucsSplit o;
  o.segment = meta["segment"];
  o.max_shift = meta["max_shift"];
  o.overlap = c.value("overlap", 0.25);
  o.transition_power = c.value("transition_power", 1.0);
  o.shifts = c.value("shifts", 0);
  if (c.contains("shift_offsets")) o.shift_offsets = c["shift_offsets"].get<std::vector<int64_t>>();
  at::Tensor mix = layers::to_torch(file.tensors.at(name == "short" ? "short_mix" : "mix"));
  at::Tensor want = layers::to_torch(file.tensors.at(name));
  for (int64_t batch : {1, 2, 3, 8}) {
    o.batch_size = batch;
    std::set<std::vector<int64_t>> shapes;
    segment::Forward counted = [&](const at::Tensor& x) {
      shapes.insert(x.sizes().vec());
      return toy(x);
    };
    at::Tensor got = segment::apply_demucs(counted, mix, o);
    ASSERT_EQ(got.sizes(), want.sizes());
    double err = (got - want).norm().item<double>() / want.norm().item<double>();
    EXPECT_LT(err, 1e-12) << name << " batch " << batch;
    // One input shape for every call: (batch, channels, segment).
    EXPECT_EQ(shapes, (std::set<std::vector<int64_t>>{{batch, 2, o.segment}})) << name << " batch " << batch;
  }
}

INSTANTIATE_TEST_SUITE_P(Demucs, ApplyModelParity,
                         ::testing::Values("overlap25", "overlap50_power2", "shifts2", "short"));

TEST(StaticSegments, PadsRunsAndTrims) {
  at::Tensor x = at::randn({2, 2, 60}, at::kDouble);
  std::vector<int64_t> seen;
  segment::Forward f = [&](const at::Tensor& in) {
    seen = in.sizes().vec();
    return toy(in);
  };
  at::Tensor y = segment::run_static(f, x, 100);
  EXPECT_EQ(seen, (std::vector<int64_t>{2, 2, 100}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 2, 60}));
  EXPECT_TRUE(at::allclose(y, toy(at::constant_pad_nd(x, {0, 40})).slice(-1, 0, 60)));
  EXPECT_THROW(segment::run_static(f, at::randn({1, 2, 101}), 100), std::invalid_argument);
}

TEST(StaticSegments, RandomShiftsAreReproducibleBySeed) {
  at::Tensor mix = at::randn({2, 250}, at::kDouble);
  segment::DemucsSplit o;
  o.segment = 100;
  o.max_shift = 50;
  o.shifts = 3;
  o.seed = 42;
  segment::Forward f = toy;
  EXPECT_TRUE(at::equal(segment::apply_demucs(f, mix, o), segment::apply_demucs(f, mix, o)));
  o.overlap = 1.0;
  EXPECT_THROW(segment::apply_demucs(f, mix, o), std::invalid_argument);
}

}  // namespace

namespace {

// Music-Source-Separation-Training's demix at batch 1 (tools/fixtures/make_msst_fixtures.py).
class MsstParity : public ::testing::TestWithParam<std::string> {};

TEST_P(MsstParity, MatchesMsstDemix) {
  auto file = weights::load_safetensors(kDir + "msst_demix.safetensors");
  std::ifstream in(kDir + "msst_demix.json");
  const auto c = nlohmann::json::parse(in)["cases"][GetParam()];
  const int stems = c["stems"];
  at::Tensor mix = layers::to_torch(file.tensors.at("mix")).slice(-1, 0, c["length"].get<int64_t>());
  at::Tensor want = layers::to_torch(file.tensors.at(GetParam()));
  segment::MsstChunking o;
  o.chunk_size = c["chunk_size"];
  o.num_overlap = c["num_overlap"];
  for (int64_t batch : {1, 2, 4}) {
    o.batch_size = batch;
    // As MSST batches: every call but the last has batch_size chunks.
    std::vector<int64_t> sizes;
    segment::Forward f = [&](const at::Tensor& x) {
      EXPECT_EQ(x.sizes().slice(1).vec(), (std::vector<int64_t>{2, o.chunk_size}));
      sizes.push_back(x.size(0));
      at::Tensor out = toy(x);
      return stems == 1 ? out.select(1, 0) : out;  // one target: (batch, channels, chunk)
    };
    at::Tensor got = segment::apply_msst(f, mix, o);
    ASSERT_EQ(got.sizes(), want.sizes());
    double err = (got - want).norm().item<double>() / want.norm().item<double>();
    EXPECT_LT(err, 1e-6) << GetParam() << " batch " << batch;
    ASSERT_FALSE(sizes.empty());
    for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], batch);
    EXPECT_GE(sizes.back(), 1);
    EXPECT_LE(sizes.back(), batch);
  }
}

// MSST runs a chunk at every step of the padded track; those that start past
// the track's end only reach the border that is cut off, and are not run
// (the result above is MSST's all the same).
TEST_P(MsstParity, RunsNoChunkThatStartsPastTheTrack) {
  std::ifstream in(kDir + "msst_demix.json");
  const auto c = nlohmann::json::parse(in)["cases"][GetParam()];
  const int64_t length = c["length"], chunk = c["chunk_size"], step = chunk / c["num_overlap"].get<int64_t>();
  const int64_t border = chunk - step;
  const bool bordered = length > 2 * border;
  const int64_t padded = bordered ? length + 2 * border : length, track_end = bordered ? border + length : length;
  int64_t msst_chunks = 0, past_the_track = 0;
  for (int64_t i = 0; i < padded; i += step) ++msst_chunks, past_the_track += i >= track_end;
  if (GetParam() == "overlap2") EXPECT_EQ(past_the_track, 1);
  if (GetParam() == "overlap4") EXPECT_EQ(past_the_track, 3);
  segment::MsstChunking o;
  o.chunk_size = chunk;
  o.num_overlap = c["num_overlap"];
  int64_t calls = 0;
  segment::Forward f = [&](const at::Tensor& x) {
    ++calls;
    return toy(x);
  };
  segment::apply_msst(f, at::randn({2, length}), o);
  EXPECT_EQ(calls, msst_chunks - past_the_track) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Msst, MsstParity, ::testing::Values("overlap2", "overlap4", "short", "one_target"));

}  // namespace

namespace {

// Windowed output equals the whole-track result, block by block, in order.
TEST_P(ApplyModelParity, StreamingInWindowsGivesTheSameResult) {
  auto file = weights::load_safetensors(kDir + "apply_model.safetensors");
  std::ifstream in(kDir + "apply_model.json");
  auto meta = nlohmann::json::parse(in);
  const auto& c = meta["cases"][GetParam()];
  segment::DemucsSplit o;
  o.segment = meta["segment"];
  o.max_shift = meta["max_shift"];
  o.overlap = c.value("overlap", 0.25);
  o.transition_power = c.value("transition_power", 1.0);
  o.shifts = c.value("shifts", 0);
  o.batch_size = 3;
  if (c.contains("shift_offsets")) o.shift_offsets = c["shift_offsets"].get<std::vector<int64_t>>();
  at::Tensor mix = layers::to_torch(file.tensors.at(GetParam() == "short" ? "short_mix" : "mix"));
  at::Tensor want = layers::to_torch(file.tensors.at(GetParam()));
  int64_t calls = 0;
  segment::Forward f = [&](const at::Tensor& x) {
    ++calls;
    return toy(x);
  };
  const at::Tensor whole = segment::apply_demucs(f, mix, o);
  const int64_t whole_calls = calls;
  EXPECT_LT((whole - want).norm().item<double>() / want.norm().item<double>(), 1e-12) << GetParam();
  for (int64_t window : {1, 37, 75, 100, 160, 1000}) {
    std::vector<at::Tensor> blocks;
    int64_t next = 0;
    calls = 0;
    segment::apply_demucs_streaming(f, mix, o, window, [&](int64_t start, const at::Tensor& block) {
      EXPECT_EQ(start, next) << "window " << window;
      EXPECT_LE(block.size(-1), window);
      next = start + block.size(-1);
      blocks.push_back(block);
    });
    EXPECT_EQ(next, mix.size(-1));
    // The same batches (every chunk once) and the same sums in the same order: the same bits.
    EXPECT_EQ(calls, whole_calls) << GetParam() << " window " << window;
    EXPECT_TRUE(at::equal(at::cat(blocks, -1), whole)) << GetParam() << " window " << window;
  }
}

}  // namespace

namespace {

TEST_P(MsstParity, StreamingInWindowsGivesTheSameResult) {
  auto file = weights::load_safetensors(kDir + "msst_demix.safetensors");
  std::ifstream in(kDir + "msst_demix.json");
  const auto c = nlohmann::json::parse(in)["cases"][GetParam()];
  const int stems = c["stems"];
  at::Tensor mix = layers::to_torch(file.tensors.at("mix")).slice(-1, 0, c["length"].get<int64_t>());
  at::Tensor want = layers::to_torch(file.tensors.at(GetParam()));
  segment::MsstChunking o;
  o.chunk_size = c["chunk_size"];
  o.num_overlap = c["num_overlap"];
  o.batch_size = 2;
  int64_t chunks = 0;
  segment::Forward f = [&](const at::Tensor& x) {
    chunks += x.size(0);
    at::Tensor out = toy(x);
    return stems == 1 ? out.select(1, 0) : out;
  };
  const at::Tensor whole = segment::apply_msst(f, mix, o);
  const int64_t whole_chunks = chunks;
  EXPECT_LT((whole - want).norm().item<double>() / want.norm().item<double>(), 1e-6) << GetParam();
  for (int64_t window : {1, 33, 50, 100, 1000}) {
    std::vector<at::Tensor> blocks;
    int64_t next = 0;
    chunks = 0;
    segment::apply_msst_streaming(f, mix, o, window, [&](int64_t start, const at::Tensor& block) {
      EXPECT_EQ(start, next);
      EXPECT_LE(block.size(-1), window);
      next = start + block.size(-1);
      blocks.push_back(block);
    });
    EXPECT_EQ(next, mix.size(-1));
    // Every chunk once, and the same sums in the same order: the same bits.
    EXPECT_EQ(chunks, whole_chunks) << GetParam() << " window " << window;
    EXPECT_TRUE(at::equal(at::cat(blocks, -1), whole)) << GetParam() << " window " << window;
  }
}

}  // namespace
