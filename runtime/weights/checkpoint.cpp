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
    case Value::Kind::tensor: out.emplace(prefix, v->tensor); break;
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
  if (file->size() < 8) throw Error("{}: too small for a safetensors file", path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];
  if (header_len > file->size() - 8 || header_len > (100u << 20))
    throw Error("{}: header of {} bytes does not fit the file ({} bytes)", path, header_len, file->size());
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file->data() + 8, file->data() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw Error("{}: the header is not valid JSON: {}", path, e.what());
  }
  if (!header.is_object()) throw Error("{}: the header is not a JSON object", path);
  const uint8_t* data = file->data() + 8 + header_len;
  uint64_t data_size = file->size() - 8 - header_len;
  static const std::map<std::string, DType> dtypes = {
      {"F64", DType::f64}, {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"I64", DType::i64},
      {"I32", DType::i32}, {"I16", DType::i16}, {"I8", DType::i8},   {"U8", DType::u8},     {"BOOL", DType::boolean}};
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, info] : header.items()) {
    std::string where = path + ": tensor \"" + name + "\"";
    if (name == "__metadata__") {
      if (!info.is_object()) throw Error("{}: __metadata__ is not an object", path);
      for (const auto& [k, v] : info.items())
        if (v.is_string()) out.metadata[k] = v.get<std::string>();
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw Error("{}: expected {{dtype, shape, data_offsets}}", where);
    if (!info["dtype"].is_string() || !dtypes.count(info["dtype"].get<std::string>()))
      throw Error("{}: unsupported dtype {}", where, info["dtype"].dump());
    DType dtype = dtypes.at(info["dtype"].get<std::string>());
    const auto& shape = info["shape"];
    const auto& offsets = info["data_offsets"];
    if (!shape.is_array() || !offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw Error("{}: shape must be a list and data_offsets two non-negative integers", where);
    Tensor t;
    t.dtype = dtype;
    __int128 numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) throw Error("{}: shape entries must be non-negative integers", where);
      t.shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
      if (numel > (__int128(1) << 62)) throw Error("{}: shape too large", where);
    }
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > data_size)
      throw Error("{}: data_offsets [{}, {}] outside the {} data bytes", where, begin, end, data_size);
    if (static_cast<__int128>(end - begin) != numel * static_cast<__int128>(element_size(dtype)))
      throw Error("{}: {} bytes for a {} of that shape and dtype", where, end - begin, name);
    t.stride.assign(t.shape.size(), 1);
    for (size_t i = t.shape.size(); i-- > 1;) t.stride[i - 1] = t.stride[i] * t.shape[i];
    auto storage = std::make_shared<Storage>();
    storage->file = file;
    storage->data = data + begin;
    storage->bytes = end - begin;
    storage->dtype = dtype;
    storage->key = name;
    t.storage = storage;
    ranges.emplace_back(begin, end);
    out.tensors.emplace(name, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) throw Error("{}: tensors overlap in the data section", path);
  return out;
}

}  // namespace stemkit::weights
