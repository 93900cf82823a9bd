#include "runtime/models/msst_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "runtime/error.h"

namespace stemkit::models {
namespace {

// YAML to JSON: scalars that read as integers, numbers or booleans become
// those (YAML 1.1's True/False/yes/no included, as Python's yaml loader reads
// them), everything else a string; tags are ignored.
nlohmann::json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& item : node) a.push_back(to_json(item));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& item : node) o[item.first.as<std::string>()] = to_json(item.second);
      return o;
    }
    case YAML::NodeType::Scalar: break;
  }
  const std::string text = node.Scalar();
  if (node.Tag() == "!" || text.empty()) return text;  // quoted: a string
  for (const char* t : {"true", "True", "TRUE", "yes", "Yes", "on", "On"})
    if (text == t) return true;
  for (const char* f : {"false", "False", "FALSE", "no", "No", "off", "Off"})
    if (text == f) return false;
  try {
    size_t used = 0;
    long long i = std::stoll(text, &used);
    if (used == text.size()) return static_cast<int64_t>(i);
    double d = std::stod(text, &used);
    if (used == text.size()) return d;
  } catch (const std::exception&) {
  }
  return text;
}

}  // namespace

std::vector<std::string> MsstConfig::model_stems() const {
  if (target_instrument) return {*target_instrument};
  return instruments;
}

MsstConfig load_msst_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error("{}: cannot read the file", path);
  } catch (const YAML::Exception& e) {
    throw Error("{}:{}: not valid YAML: {}", path, e.mark.line + 1, e.msg);
  }
  if (!root.IsMap() || !root["model"] || !root["model"].IsMap())
    throw Error("{}: no `model:` section; is this an MSST model configuration?", path);
  MsstConfig c;
  c.path = path;
  c.model = to_json(root["model"]);
  if (const YAML::Node type = static_cast<const YAML::Node&>(root)["model_type"]) {
    if (!type.IsScalar()) throw Error("{}:{}: `model_type` must be a name", path, type.Mark().line + 1);
    c.model_type = type.Scalar();
  }
  const YAML::Node& top = root;  // const lookups: a missing key is not inserted
  auto lookup = [&](const char* section, const char* key) -> std::optional<YAML::Node> {
    const YAML::Node s = top[section];
    if (!s || !s.IsMap()) return std::nullopt;
    const YAML::Node v = s[key];
    if (!v || v.IsNull()) return std::nullopt;
    return v;
  };
  auto integer = [&](const char* section, const char* key, int64_t& out, bool required) {
    const std::optional<YAML::Node> found = lookup(section, key);
    if (!found) {
      if (required) throw Error("{}: `{}.{}` is missing", path, section, key);
      return;
    }
    const YAML::Node& node = *found;
    nlohmann::json v = to_json(node);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0)
      throw Error("{}:{}: `{}.{}` must be a positive integer, not {}", path, node.Mark().line + 1, section, key,
                  node.IsScalar() ? node.Scalar() : v.dump());
    out = v.get<int64_t>();
  };
  integer("audio", "chunk_size", c.chunk_size, true);
  // MSST's demix takes inference.chunk_size over audio.chunk_size when a config has both.
  integer("inference", "chunk_size", c.chunk_size, false);
  integer("audio", "sample_rate", c.sample_rate, false);
  integer("audio", "num_channels", c.num_channels, false);
  integer("inference", "batch_size", c.batch_size, false);
  integer("inference", "num_overlap", c.num_overlap, false);
  auto boolean = [&](const char* section, const char* key, bool& out) {  // kept as it is when absent
    const std::optional<YAML::Node> found = lookup(section, key);
    if (!found) return;
    const nlohmann::json v = to_json(*found);
    if (!v.is_boolean())
      throw Error("{}:{}: `{}.{}` must be true or false, not {}", path, found->Mark().line + 1, section, key, v.dump());
    out = v.get<bool>();
  };
  boolean("inference", "normalize", c.normalize);
  boolean("training", "use_amp", c.use_amp);
  if (auto inst = lookup("training", "instruments")) {
    if (!inst->IsSequence()) throw Error("{}: `training.instruments` must be a list of names", path);
    for (const auto& i : *inst) {
      const std::string name = i.as<std::string>();
      // Each instrument is a stem written to its own file: two of one name would be one file.
      if (std::find(c.instruments.begin(), c.instruments.end(), name) != c.instruments.end())
        throw Error("{}:{}: `training.instruments` names '{}' twice; each stem needs its own name", path,
                    i.Mark().line + 1, name);
      c.instruments.push_back(name);
    }
  }
  if (auto target = lookup("training", "target_instrument")) c.target_instrument = target->as<std::string>();
  if (c.model_stems().empty()) throw Error("{}: `training.instruments` names no stems", path);
  return c;
}

}  // namespace stemkit::models
