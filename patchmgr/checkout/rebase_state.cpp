#include "patchmgr/checkout/rebase_state.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {
namespace {

std::filesystem::path state_path(git_repository* repo) {
  return std::filesystem::path(git_repository_path(repo)) / "patchmgr" / "rebase.json";
}

}  // namespace

std::optional<StoppedRebase> read_stopped_rebase(git_repository* repo) {
  auto path = state_path(repo);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(read_file(path));
    StoppedRebase s;
    s.component = j.at("component");
    s.onto = j.at("onto");
    s.old_pin = j.at("old_pin");
    s.manifest_sha256 = j.at("manifest_sha256");
    s.orig_head = j.at("orig_head");
    if (!j.at("orig_branch").is_null()) s.orig_branch = j.at("orig_branch").get<std::string>();
    s.was_patched = j.at("was_patched");
    s.series = j.at("series").get<std::vector<std::string>>();
    s.old_commits = j.at("old_commits").get<std::vector<std::string>>();
    s.stopped_at = j.at("stopped_at");
    s.base = j.at("base");
    s.upstreamed = j.at("upstreamed").get<std::map<std::string, std::string>>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::failed, fmt::format("{} is damaged ({}); remove it and check out the commit you want by hand",
                                              path.string(), e.what()));
  }
}

void write_stopped_rebase(git_repository* repo, const StoppedRebase& s) {
  nlohmann::json j = {{"component", s.component},
                      {"onto", s.onto},
                      {"old_pin", s.old_pin},
                      {"manifest_sha256", s.manifest_sha256},
                      {"orig_head", s.orig_head},
                      {"orig_branch", s.orig_branch ? nlohmann::json(*s.orig_branch) : nlohmann::json(nullptr)},
                      {"was_patched", s.was_patched},
                      {"series", s.series},
                      {"old_commits", s.old_commits},
                      {"stopped_at", s.stopped_at},
                      {"base", s.base},
                      {"upstreamed", s.upstreamed}};
  auto path = state_path(repo);
  std::filesystem::create_directories(path.parent_path());
  write_file_atomic(path, j.dump(2) + "\n");
}

void remove_stopped_rebase(git_repository* repo) {
  std::error_code ec;
  std::filesystem::remove(state_path(repo), ec);
}

void refuse_while_rebase_stopped(git_repository* repo, const Manifest& m, const std::string& command) {
  auto s = read_stopped_rebase(repo);
  if (!s) return;
  throw Error(
      ExitCode::refused,
      fmt::format("{}: refusing to {}: a rebase onto {} stopped at patch {} with a conflict; resolve it in {} and run "
                  "patchmgr rebase --continue {}, or run patchmgr rebase --abort {} to go back",
                  m.name, command, s->onto.substr(0, 12), s->series.at(s->stopped_at), m.checkout.string(), m.name,
                  m.name));
}

}  // namespace patchmgr
