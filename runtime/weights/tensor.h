// What the weight readers produce, before any libtorch is involved: element
// types, byte storages mapped from the file, and tensors as views into them
// (shape, stride and offset in elements, as torch describes them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/error.h"  // a damaged or unsupported file: stemkit::Error naming the file and the place

namespace stemkit::weights {

enum class DType { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };
const char* name(DType dtype);  // "float32", "bfloat16", ... (torch's names)
size_t element_size(DType dtype);

// A read-only file mapped into memory; storages keep it alive.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws stemkit::Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct Storage {
  std::shared_ptr<const MappedFile> file;
  const uint8_t* data = nullptr;  // inside file
  size_t bytes = 0;
  DType dtype = DType::f32;
  std::string key;  // the archive entry or tensor name it came from
  size_t numel() const { return bytes / element_size(dtype); }
};

struct Tensor {
  std::shared_ptr<const Storage> storage;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // in elements
  int64_t offset = 0;           // in elements
  int64_t numel() const;        // at most kMaxElements for a tensor a reader returned
  bool contiguous() const;
  // Element `index` of the row-major flattening, converted to double (tests, debugging).
  double at(int64_t index) const;
};

// Bounds every tensor a reader accepts, so that no product of sizes, strides
// and offset overflows int64 (torch's own limit is 2^63 - 1; a file claiming
// more is hostile or damaged, and a count that wrapped would be a lie).
constexpr int64_t kMaxElements = int64_t(1) << 62;
constexpr size_t kMaxDims = 64;

// What is wrong with a shape: more than kMaxDims dimensions, a negative size,
// or a product of the sizes (zeros counted as ones, so that the strides of
// every suffix fit too) above kMaxElements. Empty when it is fine.
std::string shape_problem(const std::vector<int64_t>& shape);

// What is wrong with a tensor view: its shape (above), a stride or offset
// that is negative, or an addressed element beyond kMaxElements or beyond its
// storage; every sum and product is computed without overflow. Empty when
// every element the view addresses exists.
std::string view_problem(const Tensor& t);

}  // namespace stemkit::weights
