#include "runtime/models/kwargs.h"

#include <utility>

namespace stemkit::models {

Kwargs::Kwargs(const nlohmann::json& j, std::string where, std::string model)
    : j_(j), where_(std::move(where)), model_(std::move(model)) {
  if (!j_.is_object()) throw Error("{}: {} arguments must be a mapping", where_, model_);
}

bool Kwargs::has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
const nlohmann::json& Kwargs::at(const char* key) const { return j_.at(key); }

void Kwargs::bad(const std::string& key, const std::string& what) const {
  throw Error("{}: {} argument {}={}: {}", where_, model_, key, j_.at(key).dump(), what);
}

void Kwargs::integer(const char* key, int64_t& out, bool required, bool zero_ok) {
  used_.insert(key);
  if (!has(key)) {
    if (required) throw Error("{}: {} needs `{}`", where_, model_, key);
    return;
  }
  const nlohmann::json& v = j_.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < (zero_ok ? 0 : 1))
    bad(key, zero_ok ? "expected a non-negative integer" : "expected a positive integer");
  out = v.get<int64_t>();
}

void Kwargs::boolean(const char* key, bool& out) {
  used_.insert(key);
  if (!j_.contains(key)) return;
  if (!j_.at(key).is_boolean()) bad(key, "expected true or false");
  out = j_.at(key).get<bool>();
}

void Kwargs::refuse_unless(const char* key, const nlohmann::json& fine, const std::string& why) {
  used_.insert(key);
  if (has(key) && j_.at(key) != fine) bad(key, why);
}

std::vector<std::string> Kwargs::unused() const {
  std::vector<std::string> out;
  for (const auto& [key, value] : j_.items())
    if (!used_.count(key)) out.push_back(key);
  return out;
}

}  // namespace stemkit::models
