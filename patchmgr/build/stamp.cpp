#include "patchmgr/build/stamp.h"

#include <fmt/format.h>

#include "patchmgr/checkout/inspect.h"
#include "patchmgr/git/git.h"

namespace patchmgr {

std::optional<std::string> checkout_mismatch(const Manifest& m) {
  if (!git::is_repository(m.checkout))
    return fmt::format("no checkout at {} (run patchmgr sync {} && patchmgr apply {})", m.checkout_field, m.name,
                       m.name);
  git::Repository repo = git::open(m.checkout);
  Inspection in = inspect(repo.get(), m, false);
  if (in.interrupted)
    return fmt::format("an interrupted patchmgr {} (run patchmgr status {})", in.interrupted->transition.command,
                       m.name);
  size_t enabled = 0, applied = 0;
  for (const auto& r : in.patches) {
    if (r.patch->kind != PatchKind::source || !r.patch->enabled) continue;
    ++enabled;
    if (r.state == PatchState::applied) ++applied;
  }
  switch (in.state) {
    case CheckoutState::missing:
      return fmt::format("no checkout at {} (run patchmgr sync {} && patchmgr apply {})", m.checkout_field, m.name,
                         m.name);
    case CheckoutState::pristine:
      if (enabled == 0) break;
      return fmt::format("pristine, none of its {} patches applied (run patchmgr apply {})", enabled, m.name);
    case CheckoutState::partial:
      return fmt::format("partially patched, {} of {} patches applied (run patchmgr apply {})", applied, enabled,
                         m.name);
    case CheckoutState::diverged: return fmt::format("diverged: {} (run patchmgr status {})", in.detail, m.name);
    case CheckoutState::patched: break;
  }
  std::vector<std::string> opt_in;
  for (const auto& r : in.patches)
    if (r.patch->kind == PatchKind::source && !r.patch->enabled && r.state == PatchState::applied)
      opt_in.push_back(r.patch->id);
  if (!opt_in.empty())
    return fmt::format(
        "opt-in patch{} {} applied, which the patch set leaves off (run patchmgr apply {} without --with)",
        opt_in.size() == 1 ? "" : "es", fmt::join(opt_in, ", "), m.name);
  if (in.has_tracked_edits()) {
    size_t n = 0;
    for (const auto& e : in.edits) n += e.code != '?';
    return fmt::format(
        "{} tracked file{} edited in the checkout (commit them into a patch with patchmgr export, or patchmgr revert "
        "--discard {})",
        n, n == 1 ? "" : "s", m.name);
  }
  return std::nullopt;
}

std::string Stamp::line(bool allow_mismatch) const {
  if (matches()) return fmt::format("checkouts match patch set {}", fingerprint.id);
  return fmt::format("checkouts DIFFER from patch set {}{}: {}", fingerprint.id,
                     allow_mismatch ? " (built with --allow-mismatch)" : "", fmt::join(mismatches, "; "));
}

Stamp stamp_checkouts(const std::vector<Manifest>& manifests) {
  Stamp s;
  s.fingerprint = fingerprint(manifests);
  for (const auto& m : manifests)
    if (auto why = checkout_mismatch(m)) s.mismatches.push_back(m.name + ": " + *why);
  return s;
}

}  // namespace patchmgr
