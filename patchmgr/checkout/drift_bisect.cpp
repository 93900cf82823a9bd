#include "patchmgr/checkout/drift_bisect.h"

#include <ctime>
#include <map>

#include <fmt/format.h>

#include "patchmgr/git/git.h"

namespace patchmgr {

DriftChange bisect_drift(git_repository* repo, const git_oid& pin, const git_oid& target,
                         const std::vector<const Patch*>& series, size_t index, Drift at_target) {
  DriftChange out;
  // The commits from the pin to the target, one first-parent step apart.
  std::vector<git_oid> line{pin};
  try {
    if (git::is_ancestor(repo, pin, target)) {
      for (const auto& c : git::first_parent_chain(repo, pin, target)) line.push_back(c);
    } else if (git::is_ancestor(repo, target, pin)) {
      out.backwards = true;
      auto chain = git::first_parent_chain(repo, target, pin);  // oldest first, ends at the pin
      for (auto it = chain.rbegin() + 1; it != chain.rend(); ++it) line.push_back(*it);
      line.push_back(target);
    } else {
      out.error = fmt::format(
          "{} neither descends from the pin {} nor is one of its ancestors; bisect needs a commit on the "
          "pin's line of history",
          git::short_hex(target), git::short_hex(pin));
      return out;
    }
  } catch (const Error&) {
    out.error = fmt::format(
        "{} is not on the pin's first-parent line (it came in through a merge); give a commit of the "
        "tracked branch",
        git::short_hex(target));
    return out;
  }
  out.commits = static_cast<int>(line.size()) - 1;

  std::vector<const Patch*> prefix(series.begin(), series.begin() + index + 1);
  std::map<size_t, Drift> seen{{line.size() - 1, at_target}};
  auto drift_at = [&](size_t i) {
    if (!seen.count(i)) {
      ++out.classifications;
      seen[i] = classify_series(repo, pin, line[i], prefix)[index].drift;
    }
    return seen[i];
  };
  // Invariant: line[good] is better than the target's class, line[bad] is not.
  size_t good = 0, bad = line.size() - 1;
  seen[0] = drift_at(0);
  while (bad - good > 1) {
    size_t mid = good + (bad - good) / 2;
    (severity(drift_at(mid)) >= severity(at_target) ? bad : good) = mid;
  }
  // Forward, line[bad] made it worse; backwards, line[good] is the commit the patch needs.
  const git_oid& changed = out.backwards ? line[good] : line[bad];
  out.before = out.backwards ? drift_at(bad) : drift_at(good);
  out.after = out.backwards ? drift_at(good) : drift_at(bad);
  git::Commit c = git::lookup_commit(repo, changed);
  out.commit = git::to_hex(changed);
  const git_signature* a = git_commit_author(c.get());
  out.author = a->name ? a->name : "";
  std::time_t t = static_cast<std::time_t>(a->when.time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  out.date = buf;
  const char* subject = git_commit_summary(c.get());
  out.subject = subject ? subject : "";
  return out;
}

}  // namespace patchmgr
