#include "patchmgr/report/generated_files.h"

#include <algorithm>

#include <fmt/format.h>

#include "patchmgr/report/patches_md.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"

namespace fs = std::filesystem;

namespace patchmgr {

namespace {

// The 1-based line on which `a` and `b` first differ.
size_t first_difference_line(const std::string& a, const std::string& b) {
  size_t line = 1;
  for (size_t i = 0; i < std::min(a.size(), b.size()) && a[i] == b[i]; ++i)
    if (a[i] == '\n') ++line;
  return line;
}

}  // namespace

void write_patches_md(const Context& ctx, const std::vector<Manifest>& manifests, const DocsOptions& options) {
  std::string page = render_patches_md(manifests, ctx.root);
  fs::path target = options.output.is_absolute() ? options.output : ctx.root / options.output;
  std::string current = fs::exists(target) ? read_file(target) : std::string();
  std::string shown = display_path(target, ctx.root);
  if (current == page) {
    *ctx.out << fmt::format("{} is up to date\n", shown);
    return;
  }
  if (options.check)
    throw Error(ExitCode::failed,
                fmt::format("{} is stale (first difference at line {}); run patchmgr docs and commit the result", shown,
                            first_difference_line(current, page)));
  write_file_atomic(target, page);
  *ctx.out << fmt::format("wrote {} ({} component{})\n", shown, manifests.size(), manifests.size() == 1 ? "" : "s");
}

void write_fingerprint_header(const Fingerprint& fp, const fs::path& file) {
  std::string header = fingerprint_header(fp);
  if (fs::exists(file) && read_file(file) == header) return;
  fs::create_directories(file.parent_path());
  write_file_atomic(file, header);
}

}  // namespace patchmgr
