#include "patchmgr/checkout/status.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/checkout/apply.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {

Inspection inspect_checkout(const Manifest& m) {
  if (!git::is_repository(m.checkout)) return inspect(nullptr, m, false);
  git::Repository repo = git::open(m.checkout);
  return inspect(repo.get(), m, true);
}

namespace {

std::string head_text(const Inspection& in) {
  if (!in.head.oid) return "(no commit)";
  std::string where = in.head.branch
                          ? "on " + in.head.branch->substr(in.head.branch->rfind("refs/heads/", 0) == 0 ? 11 : 0)
                          : std::string("detached");
  return fmt::format("{} {}", git::short_hex(*in.head.oid), where);
}

std::string patch_label(const Patch& p) {
  return p.kind == PatchKind::source ? p.file_field.substr(0, 4) : std::string("rt");
}

}  // namespace

void print_status(const Context& ctx, const Manifest& m, const Inspection& in) {
  auto& out = *ctx.out;
  size_t enabled = 0, applied = 0;
  std::vector<std::string> opt_in;  // applied with apply --with
  for (const auto& r : in.patches) {
    if (r.patch->kind != PatchKind::source) continue;
    if (r.patch->enabled) ++enabled;
    if (r.state == PatchState::applied) r.patch->enabled ? void(++applied) : opt_in.push_back(r.patch->id);
  }
  std::string summary = to_string(in.state);
  if (in.state == CheckoutState::patched || in.state == CheckoutState::partial)
    summary += fmt::format(" ({}/{} patches applied{})", applied, enabled,
                           opt_in.empty() ? "" : fmt::format(", with {}", fmt::join(opt_in, ", ")));
  if (in.has_tracked_edits()) summary += ", with local edits";
  out << fmt::format("{}: {}\n", m.name, summary);
  if (!in.detail.empty()) out << fmt::format("  {}\n", in.detail);
  out << fmt::format("  upstream  {} @ {} (track {})\n", ctx.upstream_url(m), m.commit.substr(0, 12), m.track);
  out << fmt::format("  checkout  {}\n", display_path(m.checkout, ctx.root));
  if (in.state != CheckoutState::missing) out << fmt::format("  HEAD      {}\n", head_text(in));
  if (in.interrupted)
    out << fmt::format(
        "  interrupted: patchmgr {} (pid {}, started {}) did not finish; the next sync, apply or revert "
        "undoes it\n",
        in.interrupted->transition.command, in.interrupted->pid, in.interrupted->started);
  if (const auto& r = in.stopped_rebase)
    out << fmt::format(
        "  rebase    onto {} stopped at patch {} (conflict); resolve it, then patchmgr rebase --continue {}, or "
        "patchmgr rebase --abort {}\n",
        r->onto.substr(0, 12), r->series.at(r->stopped_at), m.name, m.name);
  if (!in.patches.empty()) out << "  patches\n";
  for (const auto& r : in.patches) {
    std::string line = fmt::format("    {:<4} {:<28} {}", patch_label(*r.patch), r.patch->id, to_string(r.state));
    if (r.state == PatchState::runtime)
      line += " (applied by the runtime at load time)";
    else if (r.state == PatchState::disabled)
      line += fmt::format(" ({}; apply --with {} to apply it)", to_string(r.patch->status), r.patch->id);
    if (!r.detail.empty()) line += ": " + r.detail;
    out << line << "\n";
  }
  for (const auto& c : in.chain)
    if (c.kind == CommitKind::foreign || (c.kind != CommitKind::patch && !c.patch))
      out << fmt::format("    {:<4} {:<28} {}\n", "+", git::short_hex(c.oid),
                         "commit that is not a patch: " + c.subject);
  if (!in.edits.empty()) {
    out << "  local edits\n";
    for (const auto& e : in.edits) out << fmt::format("    {} {}\n", e.code, e.path);
  }
}

nlohmann::json status_json(const Context& ctx, const Manifest& m, const Inspection& in) {
  using nlohmann::json;
  json patches = json::array();
  for (const auto& r : in.patches) {
    json p = {{"id", r.patch->id},
              {"kind", to_string(r.patch->kind)},
              {"status", to_string(r.patch->status)},
              {"enabled", r.patch->enabled},
              {"state", to_key(r.state)},
              {"commit", r.commit ? json(git::to_hex(*r.commit)) : json(nullptr)},
              {"detail", r.detail}};
    if (r.patch->kind == PatchKind::source) p["file"] = r.patch->file_field, p["sha256"] = r.patch->sha256;
    patches.push_back(p);
  }
  json edits = json::array();
  for (const auto& e : in.edits) edits.push_back({{"path", e.path}, {"code", std::string(1, e.code)}});
  json unrecorded = json::array();
  for (const auto* c : in.unrecorded_commits())
    unrecorded.push_back({{"commit", git::to_hex(c->oid)}, {"subject", c->subject}});
  json interrupted = nullptr;
  if (in.interrupted)
    interrupted = {{"command", in.interrupted->transition.command},
                   {"pid", in.interrupted->pid},
                   {"started", in.interrupted->started}};
  return {
      {"name", m.name},
      {"manifest", display_path(m.path, ctx.root)},
      {"upstream", {{"url", ctx.upstream_url(m)}, {"commit", m.commit}, {"track", m.track}}},
      {"checkout", m.checkout.string()},
      {"state", to_key(in.state)},
      {"detail", in.detail},
      {"head", in.head.oid ? json(git::to_hex(*in.head.oid)) : json(nullptr)},
      {"branch", in.head.branch ? json(*in.head.branch) : json(nullptr)},
      {"patches", patches},
      {"unrecorded_commits", unrecorded},
      {"local_edits", edits},
      {"interrupted", interrupted},
      {"rebase", in.stopped_rebase ? json{{"onto", in.stopped_rebase->onto},
                                          {"stopped_at", in.stopped_rebase->series.at(in.stopped_rebase->stopped_at)}}
                                   : json(nullptr)},
  };
}

}  // namespace patchmgr
