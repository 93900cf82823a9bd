#include "runtime/weights/pickle.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "runtime/error.h"

namespace stemkit::weights {

// Iterative teardown: a pickle can nest containers a million deep, and the
// default recursive destruction would overflow the C++ stack.
Value::~Value() {
  std::vector<ValuePtr> pending;
  auto take = [&](Value& v) {
    for (auto& item : v.items) pending.push_back(std::move(item));
    for (auto& [k, val] : v.entries) pending.push_back(std::move(k)), pending.push_back(std::move(val));
    if (v.state) pending.push_back(std::move(v.state));
    v.items.clear();
    v.entries.clear();
  };
  take(*this);
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) take(*v);
  }
}

ValuePtr Value::get(const std::string& key) const {
  const auto* list = &entries;
  if (kind == Kind::object && state && state->kind == Kind::dict) list = &state->entries;
  for (const auto& [k, v] : *list)
    if (k && k->kind == Kind::string && k->text == key) return v;
  return nullptr;
}

std::string Value::describe() const {
  switch (kind) {
    case Kind::none: return "None";
    case Kind::boolean: return boolean ? "True" : "False";
    case Kind::integer: return std::to_string(integer);
    case Kind::floating: return std::to_string(floating);
    case Kind::string: return "'" + text.substr(0, 40) + "'";
    case Kind::bytes: return "bytes(" + std::to_string(text.size()) + ")";
    case Kind::tuple: return "tuple(" + std::to_string(items.size()) + ")";
    case Kind::list: return "list(" + std::to_string(items.size()) + ")";
    case Kind::set: return "set(" + std::to_string(items.size()) + ")";
    case Kind::dict: return "dict(" + std::to_string(entries.size()) + ")";
    case Kind::global: return "global " + text;
    case Kind::object: return "object " + text;
    case Kind::fraction: return std::to_string(integer) + "/" + std::to_string(denominator);
    case Kind::storage: return "storage";
    case Kind::tensor: return problem.empty() ? std::string("tensor ") + name(tensor.dtype) : "invalid tensor";
  }
  return "?";
}

namespace {

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const PersistentLoader& persistent, const std::string& where,
            const PickleLimits& limits)
      : p_(data), end_(data + size), begin_(data), persistent_(persistent), where_(where), limits_(limits) {}

  ValuePtr run() {
    while (true) {
      uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;   // PROTO
        case 0x95: skip(8); break;  // FRAME
        case '.': {                 // STOP
          if (stack_.size() != 1 || !marks_.empty())
            fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
          return stack_.back();
        }
        case '(': mark(); break;  // MARK
        case 'N': push(make(Value::Kind::none)); break;
        case 0x88:
        case 0x89: {
          auto v = make(Value::Kind::boolean);
          v->boolean = op == 0x88;
          push(v);
          break;
        }
        case 'J': push_int(static_cast<int32_t>(le(4))); break;  // BININT
        case 'K': push_int(le(1)); break;                        // BININT1
        case 'M': push_int(le(2)); break;                        // BININT2
        case 0x8a: push_long(le(1)); break;                      // LONG1
        case 0x8b: push_long(le(4)); break;                      // LONG4
        case 'G': {                                              // BINFLOAT, big-endian
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
          auto v = make(Value::Kind::floating);
          std::memcpy(&v->floating, &bits, 8);
          push(v);
          break;
        }
        case 'X': push_text(Value::Kind::string, le(4)); break;   // BINUNICODE
        case 0x8c: push_text(Value::Kind::string, le(1)); break;  // SHORT_BINUNICODE
        case 0x8d: push_text(Value::Kind::string, le(8)); break;  // BINUNICODE8
        case 'T': push_text(Value::Kind::string, le(4)); break;   // BINSTRING
        case 'U': push_text(Value::Kind::string, le(1)); break;   // SHORT_BINSTRING
        case 'B': push_text(Value::Kind::bytes, le(4)); break;    // BINBYTES
        case 'C': push_text(Value::Kind::bytes, le(1)); break;    // SHORT_BINBYTES
        case 0x8e: push_text(Value::Kind::bytes, le(8)); break;   // BINBYTES8
        case 0x96: push_text(Value::Kind::bytes, le(8)); break;   // BYTEARRAY8
        case ')': push(make(Value::Kind::tuple)); break;          // EMPTY_TUPLE
        case 't': push(container(Value::Kind::tuple, pop_mark())); break;
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          size_t n = op - 0x84;
          auto v = make(Value::Kind::tuple);
          v->items = pop_n(n);
          count(n);
          push(v);
          break;
        }
        case ']': push(make(Value::Kind::list)); break;  // EMPTY_LIST
        case 'l': push(container(Value::Kind::list, pop_mark())); break;
        case 'a': {
          auto item = pop();
          append(top(), {item});
          break;
        }  // APPEND
        case 'e': {
          auto items = pop_mark();
          append(top(), items);
          break;
        }                                                // APPENDS
        case '}': push(make(Value::Kind::dict)); break;  // EMPTY_DICT
        case 'd': {
          auto d = make(Value::Kind::dict);
          set_items(d, pop_mark());
          push(d);
          break;
        }
        case 's': {
          auto v = pop();
          auto k = pop();
          set_items(top(), {k, v});
          break;
        }  // SETITEM
        case 'u': {
          auto kv = pop_mark();
          set_items(top(), kv);
          break;
        }                                                // SETITEMS
        case 0x8f: push(make(Value::Kind::set)); break;  // EMPTY_SET
        case 0x90: {
          auto items = pop_mark();
          append(top(), items);
          break;
        }                                                                 // ADDITEMS
        case 0x91: push(container(Value::Kind::set, pop_mark())); break;  // FROZENSET
        case 'c': {                                                       // GLOBAL "module\nname\n"
          std::string module = line(), name = line();
          push(global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          if (module->kind != Value::Kind::string || name->kind != Value::Kind::string)
            fail("STACK_GLOBAL needs two strings");
          push(global(module->text, name->text));
          break;
        }
        case 'R': {
          auto args = pop();
          auto callable = pop();
          push(reduce(callable, args));
          break;
        }  // REDUCE
        case 0x81: {
          auto args = pop();
          auto cls = pop();
          push(reduce(cls, args));
          break;
        }  // NEWOBJ
        case 0x92: {
          pop();
          auto args = pop();
          auto cls = pop();
          push(reduce(cls, args));
          break;
        }            // NEWOBJ_EX
        case 'b': {  // BUILD
          auto state = pop();
          auto& target = top();
          if (target->kind == Value::Kind::object) target->state = state;
          break;  // BUILD on anything else (a tensor's empty state) changes nothing we keep
        }
        case 'q': memo_put(le(1)); break;          // BINPUT
        case 'r': memo_put(le(4)); break;          // LONG_BINPUT
        case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
        case 'h': push(memo_get(le(1))); break;    // BINGET
        case 'j': push(memo_get(le(4))); break;    // LONG_BINGET
        case 'Q': {                                // BINPERSID
          auto pid = pop();
          if (!persistent_) fail("a persistent id, but no storages to resolve it");
          push(persistent_(pid));
          break;
        }
        case '0': pop(); break;        // POP
        case '1': pop_mark(); break;   // POP_MARK
        case '2': push(top()); break;  // DUP
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op);
          fail(std::string("unsupported pickle opcode ") + buf + " (not one torch.save writes)");
        }
      }
    }
  }

 private:
  // Every value is made here, so their number is bounded (a hostile pickle
  // cannot ask for gigabytes of small objects).
  ValuePtr make(Value::Kind kind) {
    if (++values_ > limits_.max_values) fail("more than " + std::to_string(limits_.max_values) + " values");
    auto v = std::make_shared<Value>();
    v->kind = kind;
    return v;
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error("{}: byte {}: {}", where_, p_ - begin_, what); }
  uint8_t byte() {
    if (p_ >= end_) fail("unexpected end of the pickle (truncated file?)");
    return *p_++;
  }
  void skip(size_t n) {
    if (size_t(end_ - p_) < n) fail("unexpected end of the pickle (truncated file?)");
    p_ += n;
  }
  uint64_t le(int n) {
    if (end_ - p_ < n) fail("unexpected end of the pickle (truncated file?)");
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p_[i];
    p_ += n;
    return v;
  }
  std::string line() {
    const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', end_ - p_));
    if (!nl || nl - p_ > 256) fail("a GLOBAL name that does not end within 256 bytes");
    std::string s(reinterpret_cast<const char*>(p_), nl - p_);
    p_ = nl + 1;
    return s;
  }
  void count(size_t n) {
    items_ += n;
    if (items_ > limits_.max_items) fail("more than " + std::to_string(limits_.max_items) + " items");
  }
  void push(ValuePtr v) {
    if (stack_.size() >= limits_.max_values) fail("stack overflow");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("pop from an empty stack");
    auto v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("empty stack");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_n(size_t n) {
    size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + n) fail("not enough values on the stack");
    std::vector<ValuePtr> out(std::make_move_iterator(stack_.end() - n), std::make_move_iterator(stack_.end()));
    stack_.resize(stack_.size() - n);
    return out;
  }
  void mark() {
    if (marks_.size() >= limits_.max_depth) fail("nesting deeper than " + std::to_string(limits_.max_depth));
    marks_.push_back(stack_.size());
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return out;
  }
  ValuePtr container(Value::Kind kind, std::vector<ValuePtr> items) {
    count(items.size());
    auto v = make(kind);
    v->items = std::move(items);
    return v;
  }
  void append(const ValuePtr& target, const std::vector<ValuePtr>& items) {
    if (target->kind != Value::Kind::list && target->kind != Value::Kind::set && target->kind != Value::Kind::object)
      fail("APPEND to " + target->describe());
    count(items.size());
    target->items.insert(target->items.end(), items.begin(), items.end());
  }
  void set_items(const ValuePtr& target, const std::vector<ValuePtr>& kv) {
    if (target->kind != Value::Kind::dict && target->kind != Value::Kind::object)
      fail("SETITEM on " + target->describe());
    if (kv.size() % 2) fail("SETITEMS with an odd number of values");
    count(kv.size());
    for (size_t i = 0; i < kv.size(); i += 2) target->entries.emplace_back(kv[i], kv[i + 1]);
  }
  void push_int(int64_t v) {
    auto x = make(Value::Kind::integer);
    x->integer = v;
    push(x);
  }
  void push_long(uint64_t n) {
    if (n > 8) fail("an integer of " + std::to_string(n) + " bytes (more than 64 bits)");
    if (size_t(end_ - p_) < n) fail("unexpected end of the pickle (truncated file?)");
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p_[i];
    if (n > 0 && n < 8 && (p_[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    p_ += n;
    push_int(static_cast<int64_t>(v));
  }
  void push_text(Value::Kind kind, uint64_t n) {
    if (n > uint64_t(end_ - p_))
      fail("a string of " + std::to_string(n) + " bytes, longer than what is left of the pickle");
    auto v = make(kind);
    v->text.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    push(v);
  }
  void memo_put(uint64_t index) {
    if (index >= limits_.max_memo) fail("memo index " + std::to_string(index) + " beyond the limit");
    memo_[index] = top();
  }
  ValuePtr memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    return it->second;
  }
  ValuePtr global(const std::string& module, const std::string& name) {
    auto v = make(Value::Kind::global);
    v->text = module + "." + name;
    return v;
  }

  static int64_t as_int(const ValuePtr& v, const Unpickler& self, const char* what) {
    if (!v || v->kind != Value::Kind::integer)
      self.fail(std::string(what) + ": expected an integer, found " + (v ? v->describe() : "nothing"));
    return v->integer;
  }
  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what) const {
    if (!v || (v->kind != Value::Kind::tuple && v->kind != Value::Kind::list))
      fail(std::string(what) + ": expected a tuple");
    std::vector<int64_t> out;
    for (const auto& item : v->items) out.push_back(as_int(item, *this, what));
    return out;
  }

  // The only "calls" there are: known constructors become values, others inert objects.
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Value::Kind::global) fail("a call of " + callable->describe() + ", which is not a global");
    if (args->kind != Value::Kind::tuple) fail("call arguments that are not a tuple");
    const std::string& f = callable->text;
    const auto& a = args->items;
    if (f == "collections.OrderedDict" || f == "builtins.dict") {
      auto d = make(Value::Kind::dict);
      if (!a.empty() && a[0]->kind == Value::Kind::list)  // OrderedDict([(k, v), ...])
        for (const auto& pair : a[0]->items)
          if (pair->kind == Value::Kind::tuple && pair->items.size() == 2)
            d->entries.emplace_back(pair->items[0], pair->items[1]);
      return d;
    }
    if (f == "builtins.set" || f == "builtins.frozenset")
      return container(Value::Kind::set, a.empty() ? std::vector<ValuePtr>{} : a[0]->items);
    if (f == "fractions.Fraction") return fraction(a);
    if (f == "_codecs.encode") return latin1_bytes(a);  // how protocol 2 writes bytes objects
    if ((f == "builtins.bytes" || f == "__builtin__.bytes" || f == "builtins.bytearray") && a.empty())
      return make(Value::Kind::bytes);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") return rebuild_tensor(a);
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Value::Kind::tensor) fail(f + " without a tensor");
      return a[0];
    }
    auto obj = make(Value::Kind::object);
    obj->text = f;
    obj->items = a;
    return obj;
  }

  // _codecs.encode(text, 'latin1'): each code point (< 256) is one byte.
  ValuePtr latin1_bytes(const std::vector<ValuePtr>& a) {
    if (a.size() != 2 || a[0]->kind != Value::Kind::string || a[1]->kind != Value::Kind::string ||
        (a[1]->text != "latin1" && a[1]->text != "latin-1"))
      fail("_codecs.encode with arguments other than (text, 'latin1')");
    auto v = make(Value::Kind::bytes);
    const std::string& in = a[0]->text;
    for (size_t i = 0; i < in.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(in[i]);
      if (c < 0x80) {
        v->text += static_cast<char>(c);
      } else if ((c & 0xE0) == 0xC0 && i + 1 < in.size()) {
        unsigned cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(in[++i]) & 0x3F);
        if (cp > 0xFF) fail("_codecs.encode: a character beyond latin1");
        v->text += static_cast<char>(cp);
      } else {
        fail("_codecs.encode: a character beyond latin1");
      }
    }
    return v;
  }

  ValuePtr fraction(const std::vector<ValuePtr>& a) {
    auto v = make(Value::Kind::fraction);
    if (a.size() == 1 && a[0]->kind == Value::Kind::string) {
      const std::string& s = a[0]->text;
      auto slash = s.find('/');
      try {
        size_t used = 0;
        v->integer = std::stoll(s.substr(0, slash), &used);
        v->denominator = slash == std::string::npos ? 1 : std::stoll(s.substr(slash + 1));
      } catch (const std::exception&) {
        fail("fractions.Fraction('" + s.substr(0, 40) + "') is not n/d");
      }
    } else if (a.size() == 2) {
      v->integer = as_int(a[0], *this, "Fraction numerator");
      v->denominator = as_int(a[1], *this, "Fraction denominator");
    } else {
      fail("fractions.Fraction with unexpected arguments");
    }
    if (v->denominator == 0) fail("a fraction with denominator 0");
    return v;
  }

  // torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a) {
    if (a.size() < 4 || a[0]->kind != Value::Kind::storage) fail("a tensor rebuild without a storage");
    auto v = make(Value::Kind::tensor);
    v->tensor.storage = a[0]->storage;
    v->tensor.dtype = a[0]->storage->dtype;
    v->tensor.offset = as_int(a[1], *this, "storage offset");
    v->tensor.shape = int_tuple(a[2], "tensor size");
    v->tensor.stride = int_tuple(a[3], "tensor stride");
    if (std::string problem = view_problem(v->tensor); !problem.empty()) {
      v->problem = fmt::format("(storage {}): {}", a[0]->storage->key, problem);
      v->origin = where_;
      v->tensor = Tensor{};  // nothing may read through a view that leaves its storage
    }
    return v;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  const PersistentLoader& persistent_;
  std::string where_;
  PickleLimits limits_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  size_t items_ = 0;
  size_t values_ = 0;
};

}  // namespace

ValuePtr unpickle(const uint8_t* data, size_t size, const PersistentLoader& persistent, const std::string& where,
                  const PickleLimits& limits) {
  return Unpickler(data, size, persistent, where, limits).run();
}

}  // namespace stemkit::weights
