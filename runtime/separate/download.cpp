// Atomic, verified downloads of model files (libcurl). See download.h.
// STEMKIT_HAVE_CURL is set by CMake when libcurl is found; without it every
// download throws and says how to get a build that can download.
#include "runtime/separate/download.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/error.h"

#ifdef STEMKIT_HAVE_CURL
#include <curl/curl.h>
#endif

namespace stemkit::separate {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kNoDownloadSupport =
    "this build has no download support (install libcurl4-openssl-dev and rebuild)";

[[maybe_unused]] std::string part_path(const fs::path& dest) {
  return fmt::format("{}.part-{}", dest.string(), ::getpid());
}

// Removes `<dest>.part-<pid>` files whose process is gone (a crash or Ctrl-C
// during an earlier download), and our own pid's (an earlier failed attempt).
[[maybe_unused]] void remove_stale_parts(const fs::path& dest) {
  std::string prefix = dest.filename().string() + ".part-";
  std::error_code ec;
  for (const auto& entry :
       fs::directory_iterator(dest.parent_path().empty() ? fs::path(".") : dest.parent_path(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string pid_text = name.substr(prefix.size());
    if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
    pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    bool dead = pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH);
    if (dead) fs::remove(entry.path(), ec);
  }
}

[[maybe_unused]] void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);  // best effort: the rename itself has happened
  ::close(fd);
}

// The temporary file: closed and removed on scope exit unless committed.
struct PartFile {
  std::string path;
  int fd = -1;
  bool committed = false;
  ~PartFile() {
    if (fd >= 0) ::close(fd);
    if (!committed) ::unlink(path.c_str());
  }
};

std::string by_hand(const std::string& url, const fs::path& dest) {
  return fmt::format("or download {} by hand and save it as {}", url, dest.string());
}

#ifdef STEMKIT_HAVE_CURL

struct Transfer {
  int fd = -1;
  int64_t written = 0;
  int write_errno = 0;
  const DownloadProgress* progress = nullptr;
  std::exception_ptr callback_error;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(t->fd, data + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->write_errno = errno;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    off += static_cast<size_t>(w);
  }
  t->written += static_cast<int64_t>(n);
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t done, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->progress == nullptr || !*t->progress) return 0;
  try {
    (*t->progress)(static_cast<int64_t>(done), total > 0 ? static_cast<int64_t>(total) : -1);
  } catch (...) {
    t->callback_error = std::current_exception();
    return 1;  // aborts the transfer
  }
  return 0;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string transfer_failure(CURLcode code, const char* detail, long http_status, const Transfer& t,
                             curl_off_t content_length, const std::string& url, const fs::path& dest,
                             const std::string& part) {
  std::string what = detail[0] != '\0' ? std::string(detail) : std::string(curl_easy_strerror(code));
  switch (code) {
    case CURLE_HTTP_RETURNED_ERROR:
      return fmt::format("downloading {} failed: HTTP {}; {}, try again later, {}", url, http_status,
                         http_status == 404 || http_status == 410
                             ? "the server no longer has the file there (is this stemkit up to date?)"
                             : "the server refused or failed the request",
                         by_hand(url, dest));
    case CURLE_WRITE_ERROR:
      if (t.write_errno != 0)
        return fmt::format(
            "downloading {} failed: writing {} failed: {}; free some space or choose another directory with "
            "--model-dir, then run again",
            url, part, std::strerror(t.write_errno));
      break;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      return fmt::format(
          "downloading {} failed: the connection broke after {} of {} bytes ({}); nothing was saved; run again to "
          "retry, {}",
          url, t.written, content_length > 0 ? fmt::to_string(content_length) : std::string("?"), what,
          by_hand(url, dest));
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
      return fmt::format("downloading {} failed: {}; check the network connection and proxy settings (https_proxy), {}",
                         url, what, by_hand(url, dest));
    default: break;
  }
  return fmt::format("downloading {} failed: {}; nothing was saved; run again to retry, {}", url, what,
                     by_hand(url, dest));
}

#endif  // STEMKIT_HAVE_CURL

}  // namespace

bool download_supported() {
#ifdef STEMKIT_HAVE_CURL
  return true;
#else
  return false;
#endif
}

#ifndef STEMKIT_HAVE_CURL

std::string download_file(const std::string& url, const fs::path& dest, const DownloadOptions&) {
  throw Error("cannot download {}: {}; {}", url, kNoDownloadSupport, by_hand(url, dest));
}

#else

std::string download_file(const std::string& url, const fs::path& dest, const DownloadOptions& options) {
  global_init();
  fs::path dir = dest.parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
      throw Error(
          "cannot download {}: cannot create the directory {}: {}; choose another with "
          "--model-dir or STEMKIT_MODEL_DIR",
          url, dir.string(), ec.message());
  }
  remove_stale_parts(dest);

  PartFile part;
  part.path = part_path(dest);
  part.fd = ::open(part.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (part.fd < 0) {
    int e = errno;
    part.committed = true;  // nothing of ours to remove
    throw Error(
        "cannot download {}: cannot create {}: {}; choose a writable directory with "
        "--model-dir or STEMKIT_MODEL_DIR",
        url, part.path, std::strerror(e));
  }

  Transfer t;
  t.fd = part.fd;
  t.progress = &options.progress;
  char detail[CURL_ERROR_SIZE] = {};
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw Error("cannot download {}: libcurl failed to initialise", url);
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "stemkit-separate");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_s);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);

  CURLcode code = curl_easy_perform(h);
  if (t.callback_error) std::rethrow_exception(t.callback_error);  // PartFile removes the file
  long http_status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http_status);
  curl_off_t content_length = -1;
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
  if (code != CURLE_OK)
    throw Error(transfer_failure(code, detail, http_status, t, content_length, url, dest, part.path));
  if (http_status >= 400)  // FAILONERROR catches these; kept for servers it lets through
    throw Error("downloading {} failed: HTTP {}; {}", url, http_status, by_hand(url, dest));
  if (options.progress) options.progress(t.written, t.written);

  const std::string sha256 = file_sha256_hex(part.path);
  if (!options.sha256_prefix.empty()) {
    std::string actual = sha256.substr(0, options.sha256_prefix.size());
    if (actual != options.sha256_prefix)
      throw Error(
          "downloading {} failed: the {} bytes received have a sha256 starting with {}, expected {} ({}); nothing was "
          "saved; run again to retry, {}",
          url, t.written, actual, options.sha256_prefix,
          options.sha256_source.empty() ? "a damaged transfer, or a proxy's page instead of the file"
                                        : options.sha256_source,
          by_hand(url, dest));
  }
  if (::fsync(part.fd) != 0 || ::close(part.fd) != 0) {
    int e = errno;
    part.fd = -1;
    throw Error(
        "downloading {} failed: writing {} failed: {}; free some space or choose "
        "another directory with --model-dir, then run again",
        url, part.path, std::strerror(e));
  }
  part.fd = -1;
  if (::rename(part.path.c_str(), dest.c_str()) != 0) {
    int e = errno;
    throw Error("downloading {} failed: cannot rename {} to {}: {}", url, part.path, dest.string(), std::strerror(e));
  }
  part.committed = true;
  fsync_directory(dir);
  return sha256;
}

#endif  // STEMKIT_HAVE_CURL

std::vector<fs::path> ensure_model_files(const CatalogModel& model, const ModelCache& cache, bool allow_download,
                                         const MemberProgress& progress) {
  std::string where = cache.dir().string();
  if (!cache.dir_source().empty()) where += " (from " + cache.dir_source() + ")";
  std::vector<std::optional<fs::path>> found;
  std::vector<std::string> absent, absent_urls;
  for (const auto& m : model.members) {
    found.push_back(cache.resolve(m));
    if (!found.back()) {
      absent.push_back(m.file_name);
      absent_urls.push_back(m.url);
    }
  }
  if (!absent.empty() && !allow_download) {
    if (!download_supported())
      throw Error("model {} is not in the model cache {}: missing {}; {}, or put the files there by hand (from {})",
                  model.name, where, fmt::join(absent, ", "), kNoDownloadSupport, fmt::join(absent_urls, ", "));
    throw Error(
        "model {} is not in the model cache {}: missing {}; run with --download to fetch {}, or put the "
        "files there by hand",
        model.name, where, fmt::join(absent, ", "), absent.size() == 1 ? "it" : "them");
  }
  std::vector<fs::path> paths;
  for (size_t i = 0; i < model.members.size(); ++i) {
    const CatalogMember& m = model.members[i];
    if (!found[i]) {
      DownloadOptions options;
      options.sha256_prefix = m.sha256_prefix;
      std::optional<std::string> recorded;
      if (m.sha256_prefix.empty() && (recorded = cache.recorded_sha256(m))) {
        options.sha256_prefix = *recorded;
        options.sha256_source = fmt::format(
            "recorded in {} at its first download: a damaged transfer, a proxy's page, or the publisher has changed "
            "the file; to trust the new file, delete that record",
            cache.recorded_hash_path(m).string());
      }
      if (progress) options.progress = [&](int64_t done, int64_t total) { progress(m, done, total); };
      const std::string sha256 = download_file(m.url, cache.path_for(m), options);
      if (m.sha256_prefix.empty() && !recorded) cache.record_sha256(m, sha256);
      found[i] = cache.path_for(m);
    }
    paths.push_back(*found[i]);
  }
  return paths;
}

}  // namespace stemkit::separate
