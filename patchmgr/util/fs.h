// Small file-system helpers shared by the manifest loader and the checkout
// operations.
#pragma once

#include <filesystem>
#include <string>

namespace patchmgr {

// Reads a whole file; throws Error(failed) naming the path when it cannot.
std::string read_file(const std::filesystem::path& path);

// Writes `content` to `path` atomically: a temporary file in the same
// directory, fsync, then rename. A reader never sees a truncated file.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

// `path` relative to `base` when it lies below it, else `path` unchanged;
// used to print short, copy-pasteable paths.
std::string display_path(const std::filesystem::path& path, const std::filesystem::path& base);

}  // namespace patchmgr
