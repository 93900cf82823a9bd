#include "patchmgr/git/binary_patch.h"

#include <zlib.h>

#include <fmt/format.h>

#include "patchmgr/util/error.h"

namespace patchmgr::git {
namespace {

const char kBase85[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";

std::string inflate_all(const char* data, size_t size, size_t inflated_size) {
  std::string out(inflated_size, '\0');
  uLongf out_len = uLongf(inflated_size);
  // uncompress() wants a non-null buffer even for an empty result.
  char dummy = 0;
  int rc = uncompress(reinterpret_cast<Bytef*>(inflated_size ? out.data() : &dummy), &out_len,
                      reinterpret_cast<const Bytef*>(data), uLong(size));
  if (rc != Z_OK || out_len != inflated_size)
    throw Error(ExitCode::failed, fmt::format("cannot inflate libgit2's binary patch data (zlib error {})", rc));
  return out;
}

// zlib at level 1, as git's deflate_it() does with core.compression unset.
std::string deflate_fast(const std::string& data) {
  uLongf bound = compressBound(uLong(data.size()));
  std::string out(bound, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(out.data()), &bound, reinterpret_cast<const Bytef*>(data.data()),
                     uLong(data.size()), Z_BEST_SPEED);
  if (rc != Z_OK) throw Error(ExitCode::failed, fmt::format("cannot deflate binary patch data (zlib error {})", rc));
  out.resize(bound);
  return out;
}

std::string block(const git_diff_binary_file& f) {
  if (f.type == GIT_DIFF_BINARY_NONE) return "";
  std::string raw = inflate_all(f.data, f.datalen, f.inflatedlen);
  const char* kind = f.type == GIT_DIFF_BINARY_DELTA ? "delta" : "literal";
  return fmt::format("{} {}\n{}\n", kind, raw.size(), base85_lines(deflate_fast(raw)));
}

}  // namespace

std::string base85_lines(const std::string& data) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t left = data.size();
  while (left) {
    size_t n = left > 52 ? 52 : left;
    out += n <= 26 ? char('A' + n - 1) : char('a' + n - 27);
    for (size_t i = 0; i < n; i += 4) {
      uint32_t acc = 0;
      for (int k = 0; k < 4; ++k) acc = (acc << 8) | (i + k < n ? p[i + k] : 0);
      char group[5];
      for (int k = 4; k >= 0; --k) {
        group[k] = kBase85[acc % 85];
        acc /= 85;
      }
      out.append(group, 5);
    }
    out += '\n';
    p += n;
    left -= n;
  }
  return out;
}

std::string format_binary_patch(const git_diff_binary& binary) {
  return "GIT binary patch\n" + block(binary.new_file) + block(binary.old_file);
}

}  // namespace patchmgr::git
