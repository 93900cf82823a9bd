// Reading a model's keyword arguments (HTDemucs' pickled `kwargs`, an MSST
// config's `model:` section): every error names the file, the model and the
// argument, and what nothing read is left over for the caller to list as
// ignored. One reader for every model, so that a bad argument reads the same
// whichever model it is given to.
#pragma once

#include <cstdint>
#include <cmath>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/error.h"

namespace stemkit::models {

class Kwargs {
 public:
  // Throws stemkit::Error unless j is a mapping. `where` names the file,
  // `model` the class its arguments are for ("HTDemucs", "BSRoformer").
  Kwargs(const nlohmann::json& j, std::string where, std::string model);

  // A positive integer (zero too with zero_ok); absent or null keeps `out`,
  // unless required.
  void integer(const char* key, int64_t& out, bool required = false, bool zero_ok = false);
  // true or false; absent keeps `out`.
  void boolean(const char* key, bool& out);
  // A value as Python accepts it where it is used: a bool is an int, an integer
  // or an integral float is an int, any number a float (HTDemucs' kwargs are
  // whatever the training script pickled). Absent or null keeps `out`.
  template <class T>
  void python(const char* key, T& out);
  // An option not implemented here: fine when absent, null or equal to `fine`
  // (compared as python() reads it).
  template <class T>
  void require(const char* key, const T& fine, const std::string& why);
  // The same for a value compared as JSON.
  void refuse_unless(const char* key, const nlohmann::json& fine, const std::string& why);

  void use(const char* key) { used_.insert(key); }
  bool has(const char* key) const;  // present and not null
  const nlohmann::json& at(const char* key) const;
  // "<where>: <model> argument <key>=<value>: <what>"
  [[noreturn]] void bad(const std::string& key, const std::string& what) const;
  // The keys nothing above read, in the mapping's order.
  std::vector<std::string> unused() const;
  const std::string& where() const { return where_; }
  const std::string& model() const { return model_; }

 private:
  const nlohmann::json& j_;
  std::string where_, model_;
  std::set<std::string> used_;
};

template <class T>
void Kwargs::python(const char* key, T& out) {
  used_.insert(key);
  if (!has(key)) return;
  const nlohmann::json& v = j_.at(key);
  if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean())
      out = v.get<bool>();
    else if (v.is_number_integer())
      out = v.get<int64_t>() != 0;
    else
      bad(key, "expected true or false");
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_boolean())
      out = v.get<bool>();
    else if (v.is_number_integer())
      out = v.get<int64_t>();
    else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())
      out = static_cast<T>(v.get<double>());
    else
      bad(key, "expected an integer");
  } else {
    if (v.is_number())
      out = v.get<double>();
    else
      bad(key, "expected a number");
  }
}

template <class T>
void Kwargs::require(const char* key, const T& fine, const std::string& why) {
  used_.insert(key);
  if (!has(key)) return;
  T value = fine;
  python(key, value);
  if (value != fine) bad(key, "not supported by this runtime (" + why + ")");
}

}  // namespace stemkit::models
