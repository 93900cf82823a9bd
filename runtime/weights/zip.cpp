#include "runtime/weights/zip.h"

#include <cstring>

#include "runtime/error.h"

namespace stemkit::weights {
namespace {

constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr size_t kMaxEntries = 1 << 20;

// Bounds-checked little-endian reads over the mapped file.
class Reader {
 public:
  Reader(const MappedFile& f) : f_(f) {}
  void need(uint64_t offset, uint64_t bytes, const char* what) const {
    if (offset > f_.size() || bytes > f_.size() - offset)
      throw Error(
          "{}: {} at byte {} runs past the end of the file ({} bytes); "
          "the file is truncated or not a PyTorch checkpoint",
          f_.path(), what, offset, f_.size());
  }
  uint64_t le(uint64_t offset, int bytes, const char* what) const {
    need(offset, bytes, what);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | f_.data()[offset + i];
    return v;
  }

 private:
  const MappedFile& f_;
};

}  // namespace

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  const MappedFile& f = *file_;
  Reader r(f);
  if (f.size() < 22) throw Error("{}: too small to be a ZIP archive ({} bytes)", f.path(), f.size());
  // The end-of-central-directory record sits in the last 22 + 65535 bytes.
  uint64_t eocd = UINT64_MAX;
  uint64_t lowest = f.size() > 22 + 65535 ? f.size() - 22 - 65535 : 0;
  for (uint64_t pos = f.size() - 22 + 1; pos-- > lowest;) {
    if (r.le(pos, 4, "end record") == kEndOfCentralDir) {
      eocd = pos;
      break;
    }
  }
  if (eocd == UINT64_MAX)
    throw Error("{}: no ZIP end-of-central-directory record; the file is truncated or not a PyTorch checkpoint",
                f.path());
  uint64_t count = r.le(eocd + 10, 2, "entry count");
  uint64_t cd_size = r.le(eocd + 12, 4, "central directory size");
  uint64_t cd_offset = r.le(eocd + 16, 4, "central directory offset");
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < 20 || r.le(eocd - 20, 4, "ZIP64 locator") != kZip64EndLocator)
      throw Error("{}: ZIP64 archive without its ZIP64 locator", f.path());
    uint64_t z64 = r.le(eocd - 20 + 8, 8, "ZIP64 end record offset");
    if (r.le(z64, 4, "ZIP64 end record") != kZip64End) throw Error("{}: bad ZIP64 end record", f.path());
    count = r.le(z64 + 32, 8, "ZIP64 entry count");
    cd_size = r.le(z64 + 40, 8, "ZIP64 central directory size");
    cd_offset = r.le(z64 + 48, 8, "ZIP64 central directory offset");
  }
  if (count > kMaxEntries) throw Error("{}: claims {} entries; refusing more than {}", f.path(), count, kMaxEntries);
  r.need(cd_offset, cd_size, "central directory");

  uint64_t pos = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (r.le(pos, 4, "central directory entry") != kCentralHeader)
      throw Error("{}: central directory entry {} is damaged", f.path(), i);
    uint64_t method = r.le(pos + 10, 2, "compression method");
    uint64_t csize = r.le(pos + 20, 4, "compressed size");
    uint64_t usize = r.le(pos + 24, 4, "size");
    uint64_t name_len = r.le(pos + 28, 2, "name length");
    uint64_t extra_len = r.le(pos + 30, 2, "extra length");
    uint64_t comment_len = r.le(pos + 32, 2, "comment length");
    uint64_t local = r.le(pos + 42, 4, "local header offset");
    r.need(pos + 46, name_len + extra_len + comment_len, "entry name");
    std::string name(reinterpret_cast<const char*>(f.data() + pos + 46), name_len);
    // ZIP64 extra field: the 64-bit values, in order, for the fields that are 0xFFFFFFFF.
    uint64_t extra = pos + 46 + name_len, extra_end = extra + extra_len;
    while (extra + 4 <= extra_end) {
      uint64_t id = r.le(extra, 2, "extra field"), len = r.le(extra + 2, 2, "extra field");
      if (extra + 4 + len > extra_end) throw Error("{}: entry {} has a damaged extra field", f.path(), name);
      if (id == 0x0001) {
        uint64_t p = extra + 4, end = p + len;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (p + 8 > end) throw Error("{}: entry {} has a short ZIP64 field", f.path(), name);
          field = r.le(p, 8, "ZIP64 field");
          p += 8;
        };
        take(usize);
        take(csize);
        take(local);
      }
      extra += 4 + len;
    }
    if (method != 0)
      throw Error(
          "{}: entry {} is compressed (method {}); "
          "PyTorch checkpoints store entries uncompressed: re-save it with torch.save",
          f.path(), name, method);
    if (csize != usize) throw Error("{}: entry {} has inconsistent sizes", f.path(), name);
    if (r.le(local, 4, "local header") != kLocalHeader)
      throw Error("{}: entry {} points at a damaged local header", f.path(), name);
    uint64_t data = local + 30 + r.le(local + 26, 2, "local name length") + r.le(local + 28, 2, "local extra length");
    r.need(data, usize, ("data of entry " + name).c_str());
    if (!entries_.emplace(name, ZipEntry{f.data() + data, static_cast<size_t>(usize)}).second)
      throw Error("{}: entry {} appears twice", f.path(), name);
    pos += 46 + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace stemkit::weights
