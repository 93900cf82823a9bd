#include "patchmgr/report/patches_md.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "patchmgr/report/benchmarks_md.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {
namespace {

std::string code_list(const std::vector<std::string>& files) {
  std::vector<std::string> quoted;
  for (const auto& f : files) quoted.push_back("`" + f + "`");
  return fmt::format("{}", fmt::join(quoted, ", "));
}

// How a user gets the patch: what `apply` does with it.
std::string how_applied(const Patch& p) {
  if (p.kind == PatchKind::runtime) return "applied by the C++ runtime at load time (no source diff)";
  if (p.status == PatchStatus::upstreamed) return "upstreamed: the pin already has it";
  if (!p.enabled && p.status == PatchStatus::disabled) return "disabled: `patchmgr apply` leaves it out";
  if (!p.enabled) return fmt::format("opt-in: `patchmgr apply --with {}`", p.id);
  return "applied by `patchmgr apply`";
}

// Where the change stands upstream, for the table ("" when the manifest does not say).
std::string upstream_cell(const Patch& p) {
  switch (p.upstream_status) {
    case UpstreamStatus::unset: return "";
    case UpstreamStatus::submitted: return fmt::format("[submitted]({})", p.upstream_url);
    case UpstreamStatus::accepted:
    case UpstreamStatus::backport:
      return fmt::format("{} `{}`", to_string(p.upstream_status), p.upstream_commit.substr(0, 12));
    default: return to_string(p.upstream_status);
  }
}

// The same, in a sentence, with the reason or the link.
std::string upstream_line(const Patch& p) {
  switch (p.upstream_status) {
    case UpstreamStatus::pending: return "pending: not offered upstream yet";
    case UpstreamStatus::submitted: return fmt::format("submitted: {}", p.upstream_url);
    case UpstreamStatus::accepted: return fmt::format("accepted upstream in `{}`", p.upstream_commit);
    case UpstreamStatus::backport: return fmt::format("backport of upstream `{}`", p.upstream_commit);
    case UpstreamStatus::denied: return fmt::format("denied upstream: {}", p.upstream_reason);
    case UpstreamStatus::inappropriate: return fmt::format("inappropriate for upstream: {}", p.upstream_reason);
    default: return "";
  }
}

std::string anchor(const Manifest& m, const Patch& p) { return m.name + "-" + p.id; }

// Indents a multi-line text so it stays inside a list item.
std::string indent(const std::string& text, const std::string& pad) {
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    // Blank lines stay inside the block (a quote keeps its paragraphs together).
    out += line.empty() ? pad.substr(0, pad.find_last_not_of(' ') + 1) + "\n" : pad + line + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

void render_component(std::string& out, const Manifest& m, const std::filesystem::path& root,
                      const std::vector<const bench::Result*>& results) {
  out += fmt::format("## {}\n\n", m.name);
  out += "| | |\n|---|---|\n";
  out += fmt::format("| Upstream | {} |\n", m.url);
  out += fmt::format("| Pin | `{}` (tracks `{}`) |\n", m.commit, m.track);
  out += fmt::format("| Checkout | `{}` |\n", m.checkout_field);
  out += fmt::format("| Manifest | [`{0}`]({0}) |\n\n", display_path(m.path, root));

  if (m.patches.empty()) {
    out += "No patches.\n\n";
  } else {
    out += "| # | Patch | Kind | Status | Upstream | Since | Files |\n|---|---|---|---|---|---|---|\n";
    int n = 0;
    for (const auto& p : m.patches) {
      std::string status = to_string(p.status);
      if (p.kind == PatchKind::source && !p.enabled && p.status == PatchStatus::experimental) status += ", opt-in";
      out += fmt::format("| {} | [{}](#{}) | {} | {} | {} | {} | {} |\n", ++n, p.title, anchor(m, p), to_string(p.kind),
                         status, upstream_cell(p), p.since, code_list(p.files));
    }
    out += "\n";
    n = 0;
    for (const auto& p : m.patches) {
      out += fmt::format("<a id=\"{}\"></a>\n### {}.{} {} (`{}`)\n\n", anchor(m, p), m.name, ++n, p.title, p.id);
      out += fmt::format("- **Purpose**: {}\n", p.purpose);
      out += fmt::format("- **Status**: {} since {}; {}\n", to_string(p.status), p.since, how_applied(p));
      if (p.upstream_status != UpstreamStatus::unset) out += fmt::format("- **Upstream**: {}\n", upstream_line(p));
      if (p.kind == PatchKind::source) {
        out += fmt::format("- **Patch**: [`patches/{0}/{1}`](patches/{0}/{1}) (sha256 `{2}`)\n", m.name, p.file_field,
                           p.sha256.substr(0, 16));
        out += fmt::format("- **Files**: {}\n", code_list(p.files));
        out += fmt::format("- **Changes**: {}\n", p.parsed.subject);
        if (!p.parsed.description.empty()) out += "\n" + indent(p.parsed.description, "  > ");
      } else {
        out += fmt::format("- **Stands in for**: {}\n", code_list(p.files));
      }
      if (!p.notes.empty()) out += fmt::format("- **Notes**: {}\n", p.notes);
      if (!p.findings.empty()) {
        out += "- **Findings**:\n";
        for (const auto& f : p.findings)
          out += f.date.empty() ? fmt::format("  - {}\n", f.text) : fmt::format("  - {}: {}\n", f.date, f.text);
      }
      out += "\n";
    }
  }
  out += "### Workflow\n\n```sh\n";
  out += fmt::format("patchmgr sync {0}      # clone {1} into {2} and check out the pin\n", m.name, m.url,
                     m.checkout_field);
  out += fmt::format("patchmgr apply {0}     # the enabled patches, one commit each, on branch patchmgr/{0}\n", m.name);
  out += fmt::format("patchmgr status {0}    # pristine, patched, partially patched or diverged; per patch\n", m.name);
  out += fmt::format("patchmgr check {0} --against latest   # does the series still apply on upstream {1}?\n", m.name,
                     m.track);
  out += fmt::format("patchmgr revert {0}    # back to the pristine pin (refuses to lose local work)\n", m.name);
  out += "```\n\n";
  out += render_benchmarks(m, results, root);
}

}  // namespace

std::string render_patches_md(const std::vector<Manifest>& manifests, const std::filesystem::path& root) {
  return render_patches_md(manifests, root, bench::load_results(root));
}

std::string render_patches_md(const std::vector<Manifest>& manifests, const std::filesystem::path& root,
                              const std::vector<bench::Result>& results) {
  std::map<std::string, std::vector<const bench::Result*>> by_component;
  for (const auto& r : results) {
    if (std::none_of(manifests.begin(), manifests.end(), [&](const Manifest& m) { return m.name == r.component; }))
      throw Error(
          ExitCode::usage,
          fmt::format("{}: component: \"{}\" has no manifest in manifests/; remove the result or restore the manifest",
                      display_path(r.file, root), r.component));
    by_component[r.component].push_back(&r);
  }
  std::string out = "# Patches\n\n";
  out +=
      "<!-- Generated by `patchmgr docs` from manifests/ and patches/. Do not edit: edit the manifests and run "
      "`patchmgr docs`; CI runs `patchmgr docs --check`. -->\n\n";
  out += "The patches stemkit keeps on upstream projects, what each is for, and how to get them.\n\n";
  if (manifests.empty()) {
    out += "No components yet: `manifests/` has no manifest.\n";
    return out;
  }
  out += "| Component | Upstream | Pin | Patches |\n|---|---|---|---|\n";
  for (const auto& m : manifests) {
    size_t source = 0, runtime = 0;
    for (const auto& p : m.patches) (p.kind == PatchKind::source ? source : runtime)++;
    out += fmt::format("| [{0}](#{0}) | {1} | `{2}` | {3} source, {4} runtime |\n", m.name, m.url,
                       m.commit.substr(0, 12), source, runtime);
  }
  out += "\n";
  for (const auto& m : manifests) render_component(out, m, root, by_component[m.name]);
  while (out.size() > 1 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

}  // namespace patchmgr
