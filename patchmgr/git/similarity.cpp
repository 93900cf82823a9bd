#include "patchmgr/git/similarity.h"

#include <cstring>
#include <map>

#include <fmt/format.h>

#include "patchmgr/git/git.h"

namespace patchmgr::git {
namespace {

constexpr double kMaxScore = 60000.0;   // git's MAX_SCORE
constexpr unsigned kHashBase = 107927;  // git's HASHBASE

// git's buffer_is_binary(): a NUL byte in the first 8000 bytes.
bool is_binary(const std::string& s) { return std::memchr(s.data(), 0, std::min<size_t>(s.size(), 8000)) != nullptr; }

// git's hash_chars(): the bytes of each chunk (a line, or 64 bytes of a long
// one) counted under the chunk's hash; CR of CRLF is not counted in text.
std::map<unsigned, unsigned long> hash_chars(const std::string& s) {
  std::map<unsigned, unsigned long> counts;
  bool text = !is_binary(s);
  unsigned accum1 = 0, accum2 = 0;
  unsigned n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned c = static_cast<unsigned char>(s[i]);
    unsigned old1 = accum1;
    if (text && c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    accum1 = (accum1 << 7) ^ (accum2 >> 25);
    accum2 = (accum2 << 7) ^ (old1 >> 25);
    accum1 += c;
    if (++n < 64 && c != '\n') continue;
    counts[(accum1 + accum2 * 0x61) % kHashBase] += n;
    n = 0;
    accum1 = accum2 = 0;
  }
  if (n > 0) counts[(accum1 + accum2 * 0x61) % kHashBase] += n;
  return counts;
}

std::string blob_text(git_repository* repo, const git_oid& id) {
  git_blob* b = nullptr;
  check(git_blob_lookup(&b, repo, &id), fmt::format("cannot read blob {}", to_hex(id)));
  Blob blob(b);
  return std::string(static_cast<const char*>(git_blob_rawcontent(b)), size_t(git_blob_rawsize(b)));
}

}  // namespace

int similarity_index(const std::string& src, const std::string& dst) {
  size_t max_size = std::max(src.size(), dst.size());
  if (!dst.size() || !max_size) return 0;
  auto s = hash_chars(src), d = hash_chars(dst);
  unsigned long copied = 0;
  for (const auto& [hash, src_count] : s) {
    auto it = d.find(hash);
    unsigned long dst_count = it == d.end() ? 0 : it->second;
    copied += std::min(src_count, dst_count);
  }
  int score = int(double(copied) * kMaxScore / double(max_size));
  return int(score * 100 / kMaxScore);
}

int similarity_index(git_repository* repo, const git_diff_delta& delta) {
  if (git_oid_equal(&delta.old_file.id, &delta.new_file.id)) return 100;
  return similarity_index(blob_text(repo, delta.old_file.id), blob_text(repo, delta.new_file.id));
}

}  // namespace patchmgr::git
