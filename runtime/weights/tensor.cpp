#include "runtime/weights/tensor.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "runtime/error.h"

namespace stemkit::weights {

const char* name(DType dtype) {
  switch (dtype) {
    case DType::f64: return "float64";
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::i64: return "int64";
    case DType::i32: return "int32";
    case DType::i16: return "int16";
    case DType::i8: return "int8";
    case DType::u8: return "uint8";
    case DType::boolean: return "bool";
  }
  return "?";
}

size_t element_size(DType dtype) {
  switch (dtype) {
    case DType::f64:
    case DType::i64: return 8;
    case DType::f32:
    case DType::i32: return 4;
    case DType::f16:
    case DType::bf16:
    case DType::i16: return 2;
    case DType::i8:
    case DType::u8:
    case DType::boolean: return 1;
  }
  return 1;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("{}: not a regular file", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error("{}: cannot map: {}", path, std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool Tensor::contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && stride[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

namespace {
double half_to_double(uint16_t h) {
  int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  double v;
  if (exp == 0)
    v = std::ldexp(man, -24);
  else if (exp == 31)
    v = man ? NAN : INFINITY;
  else
    v = std::ldexp(man + 1024, exp - 25);
  return sign ? -v : v;
}
}  // namespace

double Tensor::at(int64_t index) const {
  int64_t element = offset;
  for (size_t i = shape.size(); i-- > 0;) {
    element += (index % shape[i]) * stride[i];
    index /= shape[i];
  }
  const uint8_t* p = storage->data + element * element_size(dtype);
  switch (dtype) {
    case DType::f64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case DType::f32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::f16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return half_to_double(v);
    }
    case DType::bf16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      uint32_t bits = uint32_t(v) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::i64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return double(v);
    }
    case DType::i32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::i16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case DType::i8: return double(static_cast<int8_t>(*p));
    case DType::u8: return double(*p);
    case DType::boolean: return *p ? 1.0 : 0.0;
  }
  return 0;
}

namespace {
std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}
}  // namespace

std::string shape_problem(const std::vector<int64_t>& shape) {
  if (shape.size() > kMaxDims) return fmt::format("{} dimensions; at most {} are supported", shape.size(), kMaxDims);
  __int128 product = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return fmt::format("size {} in dimension {} of the shape {}", shape[i], i, shape_text(shape));
    // Every factor is at most 2^62 after the check before it, so the product stays below 2^124.
    product *= std::max<int64_t>(shape[i], 1);
    if (product > kMaxElements)
      return fmt::format("the shape {} has more than 2^62 elements; no real tensor is that large", shape_text(shape));
  }
  return {};
}

std::string view_problem(const Tensor& t) {
  if (auto problem = shape_problem(t.shape); !problem.empty()) return problem;
  if (t.shape.size() != t.stride.size())
    return fmt::format("the shape has {} dimensions but the stride has {}", t.shape.size(), t.stride.size());
  if (t.offset < 0 || t.offset > kMaxElements) return fmt::format("storage offset {} out of range", t.offset);
  // Highest element addressed: offset + sum((size - 1) * stride). Each term is
  // below 2^62 * 2^63, and the sum is checked after each, so __int128 holds it.
  __int128 last = t.offset;
  bool empty = false;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (t.stride[i] < 0) return fmt::format("negative stride {} in dimension {}", t.stride[i], i);
    if (t.shape[i] == 0)
      empty = true;
    else
      last += static_cast<__int128>(t.shape[i] - 1) * t.stride[i];
    if (last > kMaxElements)
      return fmt::format("the view (shape {}, stride {}, offset {}) reaches beyond element 2^62", shape_text(t.shape),
                         shape_text(t.stride), t.offset);
  }
  if (empty) return {};
  if (!t.storage) return "no storage";
  if (last >= static_cast<__int128>(t.storage->numel()))
    return fmt::format("the view (shape {}, stride {}, offset {}) reaches element {} but its storage {} holds {}",
                       shape_text(t.shape), shape_text(t.stride), t.offset, static_cast<int64_t>(last), t.storage->key,
                       t.storage->numel());
  return {};
}

}  // namespace stemkit::weights
