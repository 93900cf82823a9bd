// Fetching model files over HTTP(S) with libcurl, atomically: the body goes to
// `<dest>.part-<pid>` beside the destination, its sha256 is checked where one
// is expected, it is fsync'ed and renamed into place, so the cache only ever holds complete,
// verified files. Any failure removes the temporary file and throws an error
// naming the URL and the fix. Built without libcurl (the GPU machine has no
// headers), every download throws "this build has no download support ...".
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "runtime/separate/model_cache.h"
#include "runtime/separate/model_catalog.h"

namespace stemkit::separate {

// Bytes received so far, and the total (-1 while unknown: no Content-Length).
using DownloadProgress = std::function<void(int64_t done, int64_t total)>;

struct DownloadOptions {
  // The first hex digits the body's sha256 must start with (all 64 for a
  // whole hash); empty = not checked.
  std::string sha256_prefix;
  // Where that hash comes from and what to do when it differs, for the error
  // message; empty: the file's published hash (a mismatch is then a damaged
  // transfer or a proxy's page).
  std::string sha256_source;
  DownloadProgress progress;  // may be empty
  long connect_timeout_s = 30;
  // Give up when fewer than 1 byte/s arrives for this long (a stalled connection).
  long stall_timeout_s = 60;
};

// False when built without libcurl.
bool download_supported();

// Fetches `url` (http:// or https://, redirects followed) into `dest`, creating
// its directory; replaces an existing `dest` only once the new file is complete
// and verified. Leftover `<dest>.part-<pid>` files of dead processes are removed
// first. Throws stemkit::Error naming the URL on HTTP status >= 400, connection
// and transfer errors (a body shorter than its Content-Length included), a
// sha256 mismatch, and disk errors; nothing is left behind then. Returns the
// file's sha256 (64 lower-case hex digits).
std::string download_file(const std::string& url, const std::filesystem::path& dest, const DownloadOptions& options);

// For each member: `(member, done, total)`, as DownloadProgress.
using MemberProgress = std::function<void(const CatalogMember& member, int64_t done, int64_t total)>;

// The verified cache paths of all of `model`'s members, in member order. Absent
// members are downloaded from their URL when `allow_download` (the runner's
// --download); otherwise throws stemkit::Error listing them, the cache
// directory, and the fix (run with --download, or put the files there). A
// member without a published hash gets its sha256 recorded at its download
// (ModelCache::record_sha256); when a record is there already (the file was
// deleted, its record kept), the download must match it.
std::vector<std::filesystem::path> ensure_model_files(const CatalogModel& model, const ModelCache& cache,
                                                      bool allow_download, const MemberProgress& progress = {});

}  // namespace stemkit::separate
