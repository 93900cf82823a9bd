// A pickle reader that never executes anything: it interprets the opcodes
// that torch.save emits (protocols 2 to 5) into plain values. Globals are
// names, not code: collections.OrderedDict becomes a dict, fractions.Fraction
// a fraction, torch's tensor rebuild functions a tensor; every other global
// (a model class, a config object) stays an inert named object that carries
// its arguments and state. Nesting, memo and sizes are bounded.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/weights/tensor.h"

namespace stemkit::weights {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind {
    none,
    boolean,
    integer,
    floating,
    string,
    bytes,
    tuple,
    list,
    dict,
    set,
    global,
    object,
    fraction,
    storage,
    tensor
  };
  Kind kind = Kind::none;
  bool boolean = false;
  int64_t integer = 0;      // integer; fraction numerator
  int64_t denominator = 1;  // fraction
  double floating = 0;
  std::string text;                                    // string, bytes; "module.name" for global and object
  std::vector<ValuePtr> items;                         // tuple, list, set; object: constructor arguments
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict; object: dict items (SETITEM on it)
  ValuePtr state;                                      // object: what BUILD gave it (its __dict__)
  std::shared_ptr<const Storage> storage;              // storage
  Tensor tensor;                                       // tensor
  // tensor: what is wrong with its view ("(storage <key>): <view_problem>")
  // and the pickle it came from ("<file>:<pickle>"); empty for a usable
  // tensor, whose view then stays inside its storage. Only the dict that holds
  // a tensor knows its name, so collect_tensors reports the problem, naming
  // the tensor, and the unpickler keeps it until then.
  std::string problem, origin;

  Value() = default;
  ~Value();
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;

  // dict (or object state dict) lookup by string key; null when absent.
  ValuePtr get(const std::string& key) const;
  std::string describe() const;  // short human-readable form, for messages
};

// Resolves a persistent id (torch's ('storage', type, key, location, numel)) to a value.
using PersistentLoader = std::function<ValuePtr(const ValuePtr& pid)>;

struct PickleLimits {
  size_t max_depth = 512;  // nesting of MARKs and containers
  size_t max_memo = 1 << 22;
  size_t max_items = 1 << 24;   // all container items together
  size_t max_values = 1 << 21;  // values of any kind (each is a small allocation)
};

// `where` names the source in errors ("model.th:archive/data.pkl").
ValuePtr unpickle(const uint8_t* data, size_t size, const PersistentLoader& persistent, const std::string& where,
                  const PickleLimits& limits = {});

}  // namespace stemkit::weights
