#include "runtime/weights/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/weights/zip.h"

namespace stemkit::weights {
namespace {

// torch.save names a storage by its legacy typed class.
bool storage_dtype(const std::string& type, DType& out) {
  static const std::unordered_map<std::string, DType> types = {
      {"torch.FloatStorage", DType::f32},     {"torch.DoubleStorage", DType::f64}, {"torch.HalfStorage", DType::f16},
      {"torch.BFloat16Storage", DType::bf16}, {"torch.LongStorage", DType::i64},   {"torch.IntStorage", DType::i32},
      {"torch.ShortStorage", DType::i16},     {"torch.CharStorage", DType::i8},    {"torch.ByteStorage", DType::u8},
      {"torch.BoolStorage", DType::boolean}};
  auto it = types.find(type);
  if (it == types.end()) return false;
  out = it->second;
  return true;
}

void collect(const ValuePtr& v, const std::string& prefix, TensorMap& out, int depth) {
  if (!v || depth > 64) return;
  auto join = [&](const std::string& key) { return prefix.empty() ? key : prefix + "." + key; };
  switch (v->kind) {
    case Value::Kind::tensor:
      if (!v->problem.empty()) throw Error("{}: tensor \"{}\": {}", v->origin, prefix, v->problem);
      out.emplace(prefix, v->tensor);
      break;
    case Value::Kind::dict:
      for (const auto& [k, val] : v->entries) {
        if (!k) continue;
        if (k->kind == Value::Kind::string)
          collect(val, join(k->text), out, depth + 1);
        else if (k->kind == Value::Kind::integer)
          collect(val, join(std::to_string(k->integer)), out, depth + 1);
      }
      break;
    case Value::Kind::list:
    case Value::Kind::tuple:
      for (size_t i = 0; i < v->items.size(); ++i) collect(v->items[i], join(std::to_string(i)), out, depth + 1);
      break;
    default: break;
  }
}

bool maps_names_to_tensors(const ValuePtr& v) {
  if (!v || v->kind != Value::Kind::dict || v->entries.empty()) return false;
  return std::all_of(v->entries.begin(), v->entries.end(), [](const auto& kv) {
    return kv.first && kv.first->kind == Value::Kind::string && kv.second && kv.second->kind == Value::Kind::tensor;
  });
}

// safetensors' own reader refuses headers above 100,000,000 bytes; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// The format nests three deep ({name: {"shape": [...]}}); a little room is
// left for fields we skip. Deeper is not a safetensors header.
constexpr size_t kMaxHeaderDepth = 16;

// Reads a safetensors header as it streams past, keeping only what the format
// defines: per tensor its dtype, shape and data_offsets, and the string values
// of __metadata__. Nothing else is stored (a JSON document tree would cost
// tens of bytes per byte of a hostile header), the nesting is bounded, and
// each problem is a stemkit::Error naming the file and the tensor.
class HeaderReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  struct Entry {
    std::string name;
    std::string dtype;
    std::vector<uint64_t> shape, offsets;
    bool has_dtype = false, has_shape = false, has_offsets = false;
  };
  std::vector<Entry> tensors;
  std::map<std::string, std::string> metadata;

  explicit HeaderReader(const std::string& path) : path_(path) {}

  bool start_object(std::size_t) override { return open(true); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& key) override {
    if (skipping_) return true;
    if (depth_ == 1) {
      name_ = key;
      in_metadata_ = key == "__metadata__";
    } else if (depth_ == 2) {
      field_ = key;
    }
    return true;
  }
  bool string(string_t& value) override {
    if (skipping_) return true;
    if (depth_ == 2 && in_metadata_) {
      metadata[field_] = value;
      return true;
    }
    if (depth_ == 2 && field_ == "dtype") {
      Entry& e = tensors.back();
      if (e.has_dtype) fail("dtype is given twice");
      e.dtype = value;
      e.has_dtype = true;
      return true;
    }
    return scalar("a string");
  }
  bool number_unsigned(number_unsigned_t value) override {
    if (!skipping_ && depth_ == 3) {
      std::vector<uint64_t>& list = field_ == "shape" ? tensors.back().shape : tensors.back().offsets;
      if (field_ == "shape" && list.size() >= kMaxDims) fail(fmt::format("more than {} dimensions", kMaxDims));
      if (field_ == "data_offsets" && list.size() >= 2) fail("data_offsets must be two non-negative integers");
      list.push_back(value);
      return true;
    }
    return scalar("a number");
  }
  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t) override { return scalar("a negative number"); }
  bool number_float(number_float_t, const string_t&) override { return scalar("a fraction or a number beyond 2^64"); }
  bool binary(binary_t&) override { return scalar("binary data"); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    throw Error("{}: the header is not valid JSON (byte {} of the header): {}", path_, position, e.what());
  }

 private:
  // Inside a tensor's description (or closing it), the error names the tensor.
  [[noreturn]] void fail(const std::string& what) const {
    if (depth_ >= 1 && !name_.empty() && !in_metadata_) throw Error("{}: tensor \"{}\": {}", path_, name_, what);
    throw Error("{}: {}", path_, what);
  }

  bool open(bool object) {
    if (depth_ >= kMaxHeaderDepth)
      throw Error("{}: the header nests deeper than {} levels; a safetensors header nests 3", path_, kMaxHeaderDepth);
    ++depth_;
    if (skipping_) return true;
    if (depth_ == 1 && !object) fail("the header is not a JSON object");
    if (depth_ == 2) {
      if (in_metadata_) {
        if (!object) fail("__metadata__ is not an object");
      } else {
        if (!object) fail("expected {dtype, shape, data_offsets}");
        tensors.emplace_back();
        tensors.back().name = name_;
      }
      field_.clear();
    } else if (depth_ == 3) {
      Entry* e = in_metadata_ ? nullptr : &tensors.back();
      if (e && (field_ == "shape" || field_ == "data_offsets")) {
        if (!object) {
          bool& seen = field_ == "shape" ? e->has_shape : e->has_offsets;
          if (seen) fail(field_ + " is given twice");
          seen = true;
          return true;
        }
        fail(field_ == "shape" ? "shape must be a list of non-negative integers"
                               : "data_offsets must be two non-negative integers");
      }
      if (e && field_ == "dtype") fail("dtype must be a string");
      skipping_ = depth_;  // a field the format does not define, or a metadata value that is not a string
    } else if (depth_ == 4 && !skipping_) {
      fail(field_ == "shape" ? "shape must be a list of non-negative integers"
                             : "data_offsets must be two non-negative integers");
    }
    return true;
  }

  bool close() {
    if (skipping_ == depth_) skipping_ = 0;
    --depth_;
    if (!skipping_ && depth_ == 1 && !in_metadata_) {
      const Entry& e = tensors.back();
      if (!e.has_dtype || !e.has_shape || !e.has_offsets) fail("expected {dtype, shape, data_offsets}");
      if (e.offsets.size() != 2) fail("data_offsets must be two non-negative integers");
    }
    return true;
  }

  // A scalar where none belongs: at the top, as a tensor's description, as its
  // dtype, inside its shape or offsets. Elsewhere (an unknown field, a
  // metadata value that is not a string) it is skipped.
  bool scalar(const char* what) {
    if (skipping_) return true;
    if (depth_ == 0) fail("the header is not a JSON object");
    if (depth_ == 1) fail(in_metadata_ ? "__metadata__ is not an object" : "expected {dtype, shape, data_offsets}");
    if (depth_ == 2 && !in_metadata_) {
      if (field_ == "dtype") fail(fmt::format("dtype must be a string, not {}", what));
      if (field_ == "shape") fail("shape must be a list of non-negative integers");
      if (field_ == "data_offsets") fail("data_offsets must be two non-negative integers");
    }
    if (depth_ == 3) {
      fail(field_ == "shape" ? fmt::format("shape must be a list of non-negative integers, not {}", what)
                             : fmt::format("data_offsets must be two non-negative integers, not {}", what));
    }
    return true;
  }

  std::string path_;
  size_t depth_ = 0;     // containers open
  size_t skipping_ = 0;  // the depth at which a skipped value opened; 0 when not skipping
  bool in_metadata_ = false;
  std::string name_;   // the key at depth 1: a tensor's name or __metadata__
  std::string field_;  // the key at depth 2
};

}  // namespace

Checkpoint load_torch_checkpoint(const std::string& path) {
  auto file = std::make_shared<const MappedFile>(path);
  if (file->size() >= 2 && file->data()[0] == 0x80 && file->data()[1] <= 5)
    throw Error(
        "{}: this is PyTorch's legacy (pre-1.6) checkpoint format, which is not supported; "
        "load it once in Python and save it again with torch.save (the ZIP format)",
        path);
  if (file->size() < 4 || std::memcmp(file->data(), "PK\x03\x04", 4) != 0)
    throw Error("{}: not a PyTorch checkpoint (expected the ZIP archive torch.save writes)", path);
  ZipArchive zip(file);
  // One top-level directory holds data.pkl, byteorder and data/<key>.
  std::string prefix;
  for (const auto& [name, entry] : zip.entries()) {
    auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl") {
      if (!prefix.empty()) throw Error("{}: more than one data.pkl in the archive", path);
      prefix = name.substr(0, slash);
    }
  }
  if (prefix.empty()) throw Error("{}: the archive has no <name>/data.pkl; not a torch.save checkpoint", path);
  if (const ZipEntry* order = zip.find(prefix + "/byteorder")) {
    std::string bo(reinterpret_cast<const char*>(order->data), order->size);
    if (bo != "little") throw Error("{}: byte order \"{}\"; only little-endian checkpoints are supported", path, bo);
  }
  std::string where = path + ":" + prefix + "/data.pkl";
  std::map<std::string, std::shared_ptr<const Storage>> storages;
  PersistentLoader loader = [&](const ValuePtr& pid) -> ValuePtr {
    // ('storage', <storage type>, key, location, numel)
    if (pid->kind != Value::Kind::tuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Kind::string ||
        pid->items[0]->text != "storage" || pid->items[1]->kind != Value::Kind::global ||
        pid->items[2]->kind != Value::Kind::string || pid->items[4]->kind != Value::Kind::integer)
      throw Error("{}: a persistent id that is not a torch storage reference ({})", where, pid->describe());
    DType dtype;
    if (!storage_dtype(pid->items[1]->text, dtype))
      throw Error("{}: unsupported storage type {}", where, pid->items[1]->text);
    const std::string& key = pid->items[2]->text;
    auto it = storages.find(key);
    if (it == storages.end()) {
      const ZipEntry* entry = zip.find(prefix + "/data/" + key);
      if (!entry) throw Error("{}: storage {} ({}/data/{}) is missing from the archive", path, key, prefix, key);
      int64_t numel = pid->items[4]->integer;
      if (numel < 0 || static_cast<uint64_t>(numel) > entry->size / element_size(dtype))
        throw Error("{}: storage {} claims {} {} elements but holds {} bytes", path, key, numel, name(dtype),
                    entry->size);
      auto storage = std::make_shared<Storage>();
      storage->file = file;
      storage->data = entry->data;
      storage->bytes = static_cast<size_t>(numel) * element_size(dtype);
      storage->dtype = dtype;
      storage->key = prefix + "/data/" + key;
      it = storages.emplace(key, std::move(storage)).first;
    } else if (it->second->dtype != dtype) {
      throw Error("{}: storage {} is used as both {} and {}", where, key, name(it->second->dtype), name(dtype));
    }
    auto v = std::make_shared<Value>();
    v->kind = Value::Kind::storage;
    v->storage = it->second;
    return v;
  };
  const ZipEntry* pkl = zip.find(prefix + "/data.pkl");
  Checkpoint ck;
  ck.path = path;
  ck.root = unpickle(pkl->data, pkl->size, loader, where);
  return ck;
}

TensorMap collect_tensors(const ValuePtr& value) {
  TensorMap out;
  collect(value, "", out, 0);
  return out;
}

TensorMap state_dict(const Checkpoint& ck) {
  if (maps_names_to_tensors(ck.root)) return collect_tensors(ck.root);
  if (ck.root && ck.root->kind == Value::Kind::dict) {
    for (const char* key : {"state_dict", "state", "model_state_dict", "model"})
      if (auto v = ck.root->get(key); maps_names_to_tensors(v)) return collect_tensors(v);
  }
  std::string keys;
  if (ck.root && ck.root->kind == Value::Kind::dict)
    for (const auto& [k, v] : ck.root->entries) keys += (keys.empty() ? "" : ", ") + (k ? k->describe() : "?");
  throw Error(
      "{}: no state dict found (looked at the top level and at state_dict, state, model_state_dict, model); "
      "top-level keys: {}",
      ck.path, keys.empty() ? "none" : keys);
}

SafetensorsFile load_safetensors(const std::string& path) {
  auto file = std::make_shared<const MappedFile>(path);
  SafetensorsFile out;
  out.path = path;
  if (file->size() < 8) throw Error("{}: too small for a safetensors file ({} bytes)", path, file->size());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];
  if (header_len > kMaxHeaderBytes)
    throw Error("{}: the header claims {} bytes; safetensors headers are at most {} (not a safetensors file?)", path,
                header_len, kMaxHeaderBytes);
  if (header_len > file->size() - 8)
    throw Error("{}: header of {} bytes does not fit the file ({} bytes); the file is truncated", path, header_len,
                file->size());
  HeaderReader header(path);
  try {
    nlohmann::json::sax_parse(file->data() + 8, file->data() + 8 + header_len, &header);
  } catch (const nlohmann::json::exception& e) {
    throw Error("{}: the header is not valid JSON: {}", path, e.what());
  }
  out.metadata = std::move(header.metadata);
  const uint8_t* data = file->data() + 8 + header_len;
  uint64_t data_size = file->size() - 8 - header_len;
  static const std::map<std::string, DType> dtypes = {
      {"F64", DType::f64}, {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"I64", DType::i64},
      {"I32", DType::i32}, {"I16", DType::i16}, {"I8", DType::i8},   {"U8", DType::u8},     {"BOOL", DType::boolean}};
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& entry : header.tensors) {
    const std::string& name = entry.name;
    std::string where = path + ": tensor \"" + name + "\"";
    auto dtype_it = dtypes.find(entry.dtype);
    if (dtype_it == dtypes.end()) throw Error("{}: unsupported dtype \"{}\"", where, entry.dtype);
    Tensor t;
    t.dtype = dtype_it->second;
    for (size_t i = 0; i < entry.shape.size(); ++i) {
      if (entry.shape[i] > uint64_t(kMaxElements))
        throw Error("{}: size {} in dimension {} is beyond 2^62", where, entry.shape[i], i);
      t.shape.push_back(static_cast<int64_t>(entry.shape[i]));
    }
    if (std::string problem = shape_problem(t.shape); !problem.empty()) throw Error("{}: {}", where, problem);
    const int64_t numel = t.numel();  // at most 2^62 now, and the byte count below at most 2^65: __int128
    uint64_t begin = entry.offsets[0], end = entry.offsets[1];
    if (begin > end || end > data_size)
      throw Error("{}: data_offsets [{}, {}] outside the {} data bytes", where, begin, end, data_size);
    if (static_cast<__int128>(end - begin) != static_cast<__int128>(numel) * element_size(t.dtype))
      throw Error("{}: {} bytes for {} elements of {} (data_offsets [{}, {}])", where, end - begin, numel,
                  stemkit::weights::name(t.dtype), begin, end);
    t.stride.assign(t.shape.size(), 1);
    for (size_t i = t.shape.size(); i-- > 1;) t.stride[i - 1] = t.stride[i] * std::max<int64_t>(t.shape[i], 1);
    auto storage = std::make_shared<Storage>();
    storage->file = file;
    storage->data = data + begin;
    storage->bytes = end - begin;
    storage->dtype = t.dtype;
    storage->key = name;
    t.storage = storage;
    ranges.emplace_back(begin, end);
    if (!out.tensors.emplace(name, std::move(t)).second)
      throw Error("{}: appears twice in the header; which one is meant is unknowable", where);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) throw Error("{}: tensors overlap in the data section", path);
  return out;
}

}  // namespace stemkit::weights
