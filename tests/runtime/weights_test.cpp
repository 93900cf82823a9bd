// runtime/weights against files written by torch.save and safetensors
// (tests/fixtures/weights, made by tools/fixtures/make_weights_fixtures.py
// with PyTorch 2.11), and against damaged copies of them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/weights/checkpoint.h"

namespace fs = std::filesystem;
using namespace stemkit::weights;

namespace {

const fs::path kDir = fs::path(STEMKIT_FIXTURES) / "weights";

nlohmann::json expected() {
  std::ifstream in(kDir / "expected.json");
  return nlohmann::json::parse(in)["files"];
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Each tensor: dtype, shape, stride, offset and every value as torch saw them.
void expect_tensors(const TensorMap& tensors, const nlohmann::json& want, const std::string& file) {
  ASSERT_EQ(tensors.size(), want.size()) << file;
  for (const auto& [name, w] : want.items()) {
    SCOPED_TRACE(file + ": " + name);
    auto it = tensors.find(name);
    ASSERT_NE(it, tensors.end());
    const Tensor& t = it->second;
    EXPECT_EQ(stemkit::weights::name(t.dtype), w["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, w["shape"].get<std::vector<int64_t>>());
    if (w.contains("stride") && t.numel() > 0) EXPECT_EQ(t.stride, w["stride"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.offset, w["storage_offset"].get<int64_t>());
    const auto& values = w["values"];
    ASSERT_EQ(t.numel(), static_cast<int64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) {
      double v = values[i].is_boolean() ? (values[i].get<bool>() ? 1.0 : 0.0) : values[i].get<double>();
      ASSERT_EQ(t.at(static_cast<int64_t>(i)), v) << "element " << i;
    }
  }
}

TEST(TorchCheckpoint, StateDictMatchesWhatTorchSaved) {
  Checkpoint ck = load_torch_checkpoint((kDir / "state_dict.pt").string());
  TensorMap sd = state_dict(ck);
  expect_tensors(sd, expected()["state_dict.pt"], "state_dict.pt");
  // Views share their base's storage, as in torch.
  EXPECT_EQ(sd.at("view.t").storage, sd.at("shared.base").storage);
  EXPECT_EQ(sd.at("view.slice").offset, 8);
  EXPECT_FALSE(sd.at("view.t").contiguous());
  EXPECT_TRUE(sd.at("conv.weight").contiguous());
}

TEST(TorchCheckpoint, DemucsPackageKeepsClassKwargsAndState) {
  Checkpoint ck = load_torch_checkpoint((kDir / "demucs_package.th").string());
  ASSERT_EQ(ck.root->kind, Value::Kind::dict);
  auto klass = ck.root->get("klass");
  ASSERT_TRUE(klass);
  EXPECT_EQ(klass->kind, Value::Kind::global);
  EXPECT_EQ(klass->text, "demucs.htdemucs.HTDemucs");  // a name, never code
  auto kwargs = ck.root->get("kwargs");
  ASSERT_TRUE(kwargs);
  auto segment = kwargs->get("segment");
  ASSERT_EQ(segment->kind, Value::Kind::fraction);
  EXPECT_EQ(segment->integer, 39);
  EXPECT_EQ(segment->denominator, 5);
  auto sources = kwargs->get("sources");
  ASSERT_EQ(sources->kind, Value::Kind::list);
  ASSERT_EQ(sources->items.size(), 4u);
  EXPECT_EQ(sources->items[3]->text, "vocals");
  EXPECT_EQ(kwargs->get("bottom_channels")->integer, 512);
  EXPECT_EQ(kwargs->get("samplerate")->integer, 44100);
  EXPECT_EQ(kwargs->get("wiener_residual")->boolean, false);
  EXPECT_EQ(kwargs->get("multi_freqs")->kind, Value::Kind::none);
  EXPECT_DOUBLE_EQ(kwargs->get("t_cape_glob_loc_scale")->items[2]->floating, 1.4);
  auto nested = kwargs->get("nested")->get("deep");
  EXPECT_EQ(nested->items[1]->kind, Value::Kind::tuple);
  EXPECT_EQ(nested->items[2]->get("x")->text, std::string("\x00\x01", 2));
  // An arbitrary class instance stays an inert object with its state.
  auto args = ck.root->get("training_args");
  ASSERT_EQ(args->kind, Value::Kind::object);
  EXPECT_EQ(args->text, "omegaconf.dictconfig.DictConfig");
  EXPECT_EQ(args->get("_content")->get("epochs")->integer, 360);
  expect_tensors(state_dict(ck), expected()["demucs_package.th"], "demucs_package.th");
}

TEST(TorchCheckpoint, LightningCheckpointStateDictIsFound) {
  Checkpoint ck = load_torch_checkpoint((kDir / "lightning.ckpt").string());
  EXPECT_EQ(ck.root->get("epoch")->integer, 3);
  EXPECT_DOUBLE_EQ(ck.root->get("lr")->floating, 5e-5);
  auto bands = ck.root->get("hyper_parameters")->get("freqs_per_bands");
  ASSERT_EQ(bands->kind, Value::Kind::tuple);
  EXPECT_EQ(bands->items.size(), 3u);
  expect_tensors(state_dict(ck), expected()["lightning.ckpt"], "lightning.ckpt");
}

// runtime/error.h: arguments are formatted; a lone string is the message as it is.
TEST(Error, FormatsArgumentsAndKeepsAPlainMessage) {
  EXPECT_STREQ(stemkit::Error("{}: storage {} holds {} bytes", "a.pt", "0", 12).what(),
               "a.pt: storage 0 holds 12 bytes");
  EXPECT_STREQ(stemkit::Error("{{track}} is {}", "song").what(), "{track} is song");
  EXPECT_STREQ(stemkit::Error("--filename '{track}/{stem}': no {x}").what(), "--filename '{track}/{stem}': no {x}");
  const std::string message = "{} and {:d} stay";
  EXPECT_STREQ(stemkit::Error(message).what(), "{} and {:d} stay");
  EXPECT_THROW(throw stemkit::Error("x {}", 1), std::runtime_error);
}

TEST(TorchCheckpoint, ClearErrors) {
  try {
    load_torch_checkpoint((kDir / "legacy.pt").string());
    FAIL() << "legacy format accepted";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("legacy (pre-1.6) checkpoint format"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("legacy.pt"), std::string::npos) << e.what();
  }
  try {
    load_torch_checkpoint((kDir / "expected.json").string());
    FAIL();
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a PyTorch checkpoint"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_torch_checkpoint((kDir / "missing.pt").string()), stemkit::Error);
  Checkpoint ck = load_torch_checkpoint((kDir / "demucs_package.th").string());
  ck.root = ck.root->get("kwargs");
  try {
    state_dict(ck);
    FAIL();
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no state dict found"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'sources'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, TensorsAndMetadata) {
  SafetensorsFile f = load_safetensors((kDir / "weights.safetensors").string());
  expect_tensors(f.tensors, expected()["weights.safetensors"], "weights.safetensors");
  EXPECT_EQ(f.metadata.at("source"), "stemkit fixtures");
}

// Damaged files must give stemkit::Error, never a crash, a hang or a huge allocation.
class DamagedFiles : public ::testing::TestWithParam<std::string> {};

TEST_P(DamagedFiles, GiveErrorsOnly) {
  const std::string name = GetParam();
  const std::string good = slurp(kDir / name);
  const bool safetensors = name.ends_with(".safetensors");
  fs::path tmp = fs::temp_directory_path() / ("stemkit-damaged-" + std::to_string(::getpid()) + "-" + name);
  auto attempt = [&](const std::string& bytes) {
    { std::ofstream(tmp, std::ios::binary) << bytes; }
    try {
      if (safetensors)
        load_safetensors(tmp.string());
      else
        state_dict(load_torch_checkpoint(tmp.string()));
    } catch (const stemkit::Error&) {
    }
  };
  for (size_t n = 0; n < good.size(); n += 1 + good.size() / 200) attempt(good.substr(0, n));  // truncations
  std::mt19937 rng(1234);
  for (int i = 0; i < 1500; ++i) {  // random byte and bit flips
    std::string bad = good;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % bad.size();
      bad[at] = (rng() % 2) ? static_cast<char>(rng()) : static_cast<char>(bad[at] ^ (1 << (rng() % 8)));
    }
    attempt(bad);
  }
  fs::remove(tmp);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DamagedFiles,
                         ::testing::Values("state_dict.pt", "demucs_package.th", "lightning.ckpt",
                                           "weights.safetensors"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(Pickle, HostileInputsAreBounded) {
  PersistentLoader none;
  // A million nested lists: bounded by the value limit, torn down without recursion.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 1000000; ++i) deep += ']';
  for (int i = 0; i < 999999; ++i) deep += 'a';
  deep += '.';
  PickleLimits small;
  small.max_values = 2000000;
  ValuePtr v = unpickle(reinterpret_cast<const uint8_t*>(deep.data()), deep.size(), none, "deep", small);
  EXPECT_EQ(v->kind, Value::Kind::list);
  v.reset();  // must not overflow the stack
  small.max_values = 1000;
  EXPECT_THROW(unpickle(reinterpret_cast<const uint8_t*>(deep.data()), deep.size(), none, "deep", small),
               stemkit::Error);
  // A string that claims 4 GB.
  std::string huge = "\x80\x02X\xff\xff\xff\xff";
  EXPECT_THROW(unpickle(reinterpret_cast<const uint8_t*>(huge.data()), huge.size(), none, "huge"), stemkit::Error);
  // Code execution opcodes do not exist here: REDUCE of os.system gives an inert object.
  const char evil_bytes[] =
      "\x80\x02"
      "cos\nsystem\n"
      "X\x04\x00\x00\x00"
      "echo"
      "\x85"
      "R.";
  std::string evil(evil_bytes, sizeof evil_bytes - 1);
  ValuePtr obj = unpickle(reinterpret_cast<const uint8_t*>(evil.data()), evil.size(), none, "evil");
  EXPECT_EQ(obj->kind, Value::Kind::object);
  EXPECT_EQ(obj->text, "os.system");
  std::string marks = "\x80\x02";
  for (int i = 0; i < 10000; ++i) marks += '(';
  try {
    unpickle(reinterpret_cast<const uint8_t*>(marks.data()), marks.size(), none, "marks");
    FAIL();
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nesting deeper than 512"), std::string::npos) << e.what();
  }
}

}  // namespace
