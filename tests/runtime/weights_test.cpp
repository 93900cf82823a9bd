// runtime/weights against files written by torch.save and safetensors
// (tests/fixtures/weights, made by tools/fixtures/make_weights_fixtures.py
// with PyTorch 2.11), and against damaged copies of them.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
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

// Hostile files made here byte by byte (no torch needed): a torch.save archive
// is a stored ZIP of <name>/data.pkl and <name>/data/<key>; the pickle is the
// one torch.save writes for {name: tensor}.
std::string le_bytes(uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string zip_archive(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string local, central;
  for (const auto& [name, data] : entries) {
    uint64_t offset = local.size();
    local += le_bytes(0x04034b50, 4) + le_bytes(20, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) +
             le_bytes(0, 4) + le_bytes(data.size(), 4) + le_bytes(data.size(), 4) + le_bytes(name.size(), 2) +
             le_bytes(0, 2) + name + data;
    central += le_bytes(0x02014b50, 4) + le_bytes(20, 2) + le_bytes(20, 2) + le_bytes(0, 2) + le_bytes(0, 2) +
               le_bytes(0, 4) + le_bytes(0, 4) + le_bytes(data.size(), 4) + le_bytes(data.size(), 4) +
               le_bytes(name.size(), 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 2) +
               le_bytes(0, 4) + le_bytes(offset, 4) + name;
  }
  return local + central + le_bytes(0x06054b50, 4) + le_bytes(0, 4) + le_bytes(entries.size(), 2) +
         le_bytes(entries.size(), 2) + le_bytes(central.size(), 4) + le_bytes(local.size(), 4) + le_bytes(0, 2);
}

std::string pickle_text(const std::string& s) { return "X" + le_bytes(s.size(), 4) + s; }
std::string pickle_int(int64_t v) { return "\x8a\x08" + le_bytes(static_cast<uint64_t>(v), 8); }  // LONG1
std::string pickle_ints(const std::vector<int64_t>& values) {
  std::string out = "(";
  for (int64_t v : values) out += pickle_int(v);
  return out + "t";
}

// torch.save({name: tensor}) where the tensor is a view (shape, stride,
// offset) of float32 storage "0" of `floats` elements.
std::string torch_file(const std::string& name, const std::vector<int64_t>& shape, const std::vector<int64_t>& stride,
                       int64_t offset, size_t floats) {
  std::string pkl = "\x80\x02}" + pickle_text(name) + "ctorch._utils\n_rebuild_tensor_v2\n(" + "(" +
                    pickle_text("storage") + "ctorch\nFloatStorage\n" + pickle_text("0") + pickle_text("cpu") +
                    pickle_int(static_cast<int64_t>(floats)) + "tQ" + pickle_int(offset) + pickle_ints(shape) +
                    pickle_ints(stride) + "\x89" + "ccollections\nOrderedDict\n)RtRs.";
  std::string data;
  for (size_t i = 0; i < floats; ++i) {
    float f = static_cast<float>(i + 1);
    data.append(reinterpret_cast<const char*>(&f), 4);
  }
  return zip_archive({{"archive/data.pkl", pkl}, {"archive/data/0", data}});
}

// A file in the test's temporary directory, removed when the test ends.
class ScratchFile {
 public:
  ScratchFile(const std::string& name, const std::string& bytes)
      : path_(fs::temp_directory_path() / ("stemkit-hostile-" + std::to_string(::getpid()) + "-" + name)) {
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~ScratchFile() { fs::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// The message of the stemkit::Error that `f` throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const stemkit::Error& e) {
    return e.what();
  }
  return "";
}

TEST(TorchCheckpoint, HandMadeArchiveLoads) {
  // The builder itself, checked on a tensor that is fine: [[1, 3], [2, 4]] as a transposed view.
  ScratchFile f("ok.pt", torch_file("w", {2, 2}, {1, 2}, 0, 4));
  TensorMap sd = state_dict(load_torch_checkpoint(f.path()));
  ASSERT_EQ(sd.count("w"), 1u);
  EXPECT_EQ(sd.at("w").numel(), 4);
  EXPECT_EQ(sd.at("w").at(1), 3.0);
  EXPECT_EQ(sd.at("w").at(2), 2.0);
  // A broadcast (zero-stride) view is legal in torch, and counted as what it claims.
  ScratchFile wide("wide.pt", torch_file("w", {int64_t(1) << 31, int64_t(1) << 31}, {0, 0}, 0, 4));
  EXPECT_EQ(state_dict(load_torch_checkpoint(wide.path())).at("w").numel(), int64_t(1) << 62);
}

TEST(TorchCheckpoint, ElementCountsThatOverflowAreRefused) {
  struct Case {
    const char* what;
    std::vector<int64_t> shape, stride;
    int64_t offset;
    const char* expect;
  };
  const int64_t big = int64_t(1) << 32;
  const std::vector<Case> cases = {
      // 2^64 elements: an int64 count wraps to 0 ("0 parameters").
      {"zero strides", {big, big}, {0, 0}, 0, "has more than 2^62 elements"},
      // 3 * 2^62: wraps to a negative count.
      {"negative count", {int64_t(1) << 62, 3}, {3, 1}, 0, "has more than 2^62 elements"},
      // A zero dimension makes the count 0, but the strides of the others would still overflow.
      {"zero dimension", {0, big, big}, {0, big, 1}, 0, "has more than 2^62 elements"},
      {"negative size", {-1, 4}, {4, 1}, 0, "size -1 in dimension 0"},
      {"negative stride", {2, 2}, {-1, 1}, 0, "negative stride -1"},
      {"offset", {2}, {1}, int64_t(1) << 62 | 1, "storage offset"},
      {"stride past 2^62", {3, 2}, {int64_t(1) << 61, 1}, 0, "reaches beyond element 2^62"},
      {"outside the storage", {2, 2}, {2, 1}, 1, "reaches element 4 but its storage archive/data/0 holds 4"},
      {"rank", {2, 2}, {1}, 0, "the shape has 2 dimensions but the stride has 1"},
      {"65 dimensions", std::vector<int64_t>(65, 1), std::vector<int64_t>(65, 1), 0, "65 dimensions; at most 64"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ScratchFile f("hostile.pt", torch_file("layer.weight", c.shape, c.stride, c.offset, 4));
    std::string message = error_of([&] { state_dict(load_torch_checkpoint(f.path())); });
    EXPECT_NE(message.find(f.path()), std::string::npos) << message;                   // the file
    EXPECT_NE(message.find("tensor \"layer.weight\""), std::string::npos) << message;  // the tensor
    EXPECT_NE(message.find(c.expect), std::string::npos) << message;                   // what is wrong
  }
}

// A safetensors file: the 8-byte header length, the header, the data.
std::string safetensors_file(const std::string& header, const std::string& data) {
  return le_bytes(header.size(), 8) + header + data;
}

TEST(Safetensors, HandMadeFileLoadsAndUnknownPartsAreSkipped) {
  std::string data(24, '\0');
  for (int i = 0; i < 6; ++i) {
    float f = static_cast<float>(i);
    std::memcpy(data.data() + 4 * i, &f, 4);
  }
  ScratchFile f("ok.safetensors", safetensors_file(R"({"__metadata__": {"format": "pt", "nested": {"x": [1]}, "n": 3},
                                     "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24],
                                           "extra": {"ignored": [[1], {"a": null}]}},
                                     "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [24, 24]}}  )",
                                                   data));
  SafetensorsFile st = load_safetensors(f.path());
  ASSERT_EQ(st.tensors.size(), 2u);
  EXPECT_EQ(st.tensors.at("w").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(st.tensors.at("w").stride, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(st.tensors.at("w").at(5), 5.0);
  EXPECT_EQ(st.tensors.at("e").numel(), 0);
  EXPECT_EQ(st.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST(Safetensors, HostileHeadersAreRefused) {
  struct Case {
    const char* what;
    std::string header;
    const char* expect;
  };
  const std::string deep = R"({"__metadata__": {"a": )" + std::string(100000, '[') + std::string(100000, ']') + "}}";
  const std::string deep_field =
      R"({"w": {"dtype": "F32", "shape": [], "data_offsets": [0, 4], "x": )" + std::string(100000, '[') + "}";
  std::string ones65 = "1";
  for (int i = 1; i < 65; ++i) ones65 += ",1";
  const std::vector<Case> cases = {
      {"nested 100,000 deep in metadata", deep, "the header nests deeper than 16 levels"},
      {"nested in an unknown field", deep_field, "the header nests deeper than 16 levels"},
      {"2^64 elements", R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})",
       "tensor \"w\": the shape [4294967296, 4294967296] has more than 2^62 elements"},
      // Behind a zero, the count is 0 but the size itself wrapped to a negative int64.
      {"size beyond int64", R"({"w": {"dtype": "F32", "shape": [0, 18446744073709551615], "data_offsets": [0, 0]}})",
       "tensor \"w\": size 18446744073709551615 in dimension 1 is beyond 2^62"},
      {"strides that overflow",
       R"({"w": {"dtype": "F32", "shape": [0, 4294967296, 4294967296], "data_offsets": [0, 0]}})",
       "tensor \"w\": the shape [0, 4294967296, 4294967296] has more than 2^62 elements"},
      {"65 dimensions", R"({"w": {"dtype": "U8", "shape": [)" + ones65 + R"(], "data_offsets": [0, 1]}})",
       "tensor \"w\": more than 64 dimensions"},
      {"the same name twice",
       R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
       "tensor \"w\": appears twice"},
      {"negative size", R"({"w": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}})",
       "tensor \"w\": shape must be a list of non-negative integers, not a negative number"},
      {"three offsets", R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}})",
       "tensor \"w\": data_offsets must be two non-negative integers"},
      {"no dtype", R"({"w": {"shape": [1], "data_offsets": [0, 1]}})",
       "tensor \"w\": expected {dtype, shape, data_offsets}"},
      {"bytes that do not match", R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})",
       "tensor \"w\": 4 bytes for 2 elements of float32"},
      {"not an object", "[1, 2]", "the header is not a JSON object"},
      {"not JSON", "{\"w\": ", "the header is not valid JSON"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ScratchFile f("hostile.safetensors", safetensors_file(c.header, std::string(8, '\0')));
    std::string message = error_of([&] { load_safetensors(f.path()); });
    EXPECT_NE(message.find(f.path()), std::string::npos) << message;
    EXPECT_NE(message.find(c.expect), std::string::npos) << message;
  }
  // A header length beyond what safetensors itself accepts is refused before anything is read.
  ScratchFile huge("huge.safetensors", le_bytes(100'000'001, 8) + "{}");
  EXPECT_NE(error_of([&] { load_safetensors(huge.path()); }).find("safetensors headers are at most 100000000"),
            std::string::npos);
}

// A large header costs about its own size in memory, not a document tree of
// it (which took 1.7 GB for a 60 MB header). Measured in a child process, so
// that the peak is this load's alone.
TEST(Safetensors, LargeHeaderCostsNoMoreThanItsSize) {
  std::string header = R"({"__metadata__": {"a": [)";
  while (header.size() < (60u << 20)) header += "[],[],[],[],[],[],[],[],[],[],";
  header += "[]]}}";
  ScratchFile f("large.safetensors", safetensors_file(header, ""));
  std::string().swap(header);  // the child's peak must not include this copy
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      SafetensorsFile st = load_safetensors(f.path());
      ::_exit(st.tensors.empty() && st.metadata.empty() ? 0 : 1);
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = 0;
  struct rusage usage {};
  ASSERT_EQ(::wait4(child, &status, 0, &usage), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // ru_maxrss is in KiB; the mapped file itself accounts for 60 MiB of it.
  EXPECT_LT(usage.ru_maxrss, 200 * 1024) << "peak resident memory of the load, KiB";
}

}  // namespace
