// Loading and validating manifests. Every rule reports through `Checker::error`
// with the YAML position, what was found and what is expected, and loading
// continues so that one run shows every problem at once.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "patchmgr/manifest/manifest.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/sha256.h"

namespace patchmgr {

const char* to_string(PatchKind kind) { return kind == PatchKind::source ? "source" : "runtime"; }

const char* to_string(PatchStatus status) {
  switch (status) {
    case PatchStatus::implemented: return "implemented";
    case PatchStatus::experimental: return "experimental";
    case PatchStatus::disabled: return "disabled";
    case PatchStatus::upstreamed: return "upstreamed";
  }
  return "?";
}

const char* to_string(UpstreamStatus status) {
  switch (status) {
    case UpstreamStatus::unset: return "";
    case UpstreamStatus::pending: return "pending";
    case UpstreamStatus::submitted: return "submitted";
    case UpstreamStatus::accepted: return "accepted";
    case UpstreamStatus::backport: return "backport";
    case UpstreamStatus::denied: return "denied";
    case UpstreamStatus::inappropriate: return "inappropriate";
  }
  return "?";
}

const Patch* Manifest::find(const std::string& id) const {
  for (const auto& p : patches)
    if (p.id == id) return &p;
  return nullptr;
}

std::vector<const Patch*> Manifest::source_patches() const {
  std::vector<const Patch*> out;
  for (const auto& p : patches)
    if (p.kind == PatchKind::source) out.push_back(&p);
  return out;
}

std::string Diagnostic::to_string(const std::filesystem::path& root) const {
  return fmt::format("{}:{}:{}: error: {}", display_path(file, root), line, column, message);
}

namespace {

const std::regex kSlug("^[a-z0-9][a-z0-9-]*$");
const std::regex kSha1("^[0-9a-f]{40}$");
const std::regex kSha256("^[0-9a-f]{64}$");
const std::regex kDate("^([0-9]{4})-([0-9]{2})-([0-9]{2})$");
// NNNN-slug.patch, and git format-patch's own names (0001-Add-a-thing.patch).
const std::regex kPatchName("^[0-9]{4}-[A-Za-z0-9][A-Za-z0-9._-]*\\.patch$");

// Levenshtein distance, to suggest the key the user probably meant.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool valid_date(const std::string& s) {
  std::smatch m;
  if (!std::regex_match(s, m, kDate)) return false;
  int y = std::stoi(m[1]), mo = std::stoi(m[2]), d = std::stoi(m[3]);
  static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= (mo == 2 && !leap ? 28 : days[mo - 1]);
}

class Checker {
 public:
  Checker(const std::filesystem::path& file, std::vector<Diagnostic>& out, std::vector<Diagnostic>& unfinished)
      : file_(file), out_(out), unfinished_(unfinished) {}

  void error(const YAML::Mark& mark, std::string message) {
    out_.push_back({file_, mark.line + 1, mark.column + 1, std::move(message)});
  }
  // A placeholder still to be written: lint fails, the manifest loads.
  void unfinished(const YAML::Mark& mark, std::string message) {
    unfinished_.push_back({file_, mark.line + 1, mark.column + 1, std::move(message)});
  }

  // Checks that `node` is a map, reports unknown and duplicate keys, and
  // missing required ones. `where` names the map in messages ("upstream").
  bool map(const YAML::Node& node, const std::string& where, const std::vector<std::string>& allowed,
           const std::vector<std::string>& required) {
    if (!node.IsMap()) {
      error(node.Mark(), fmt::format("{}: found {}, expected a mapping of keys to values", where, kind(node)));
      return false;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.Scalar();
      if (!seen.insert(key).second) {
        error(it->first.Mark(), fmt::format("{}: key \"{}\" appears twice; keep one", where, key));
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string best;
        size_t best_d = 3;
        for (const auto& a : allowed)
          if (size_t d = edit_distance(key, a); d < best_d) best_d = d, best = a;
        std::string hint = best.empty() ? fmt::format("allowed keys: {}", fmt::join(allowed, ", "))
                                        : fmt::format("did you mean \"{}\"?", best);
        error(it->first.Mark(), fmt::format("{}: unknown key \"{}\"; {}", prefix(where), key, hint));
      }
    }
    for (const auto& r : required)
      if (!seen.count(r)) error(node.Mark(), fmt::format("{}: missing required key \"{}\"", where, r));
    return true;
  }

  // A non-empty scalar string, or nullopt (after reporting) when absent or wrong.
  std::optional<std::string> string(const YAML::Node& parent, const char* key, const std::string& where,
                                    bool required = true) {
    YAML::Node n = parent[key];
    if (!n) return std::nullopt;  // `map` already reported missing required keys
    if (!n.IsScalar() || n.Scalar().empty()) {
      error(n.Mark(), fmt::format("{}.{}: found {}, expected a non-empty string", where, key, kind(n)));
      return std::nullopt;
    }
    (void)required;
    return n.Scalar();
  }

  static std::string kind(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Null: return "nothing";
      case YAML::NodeType::Scalar: return n.Scalar().empty() ? "an empty value" : fmt::format("\"{}\"", n.Scalar());
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a mapping";
      default: return "an undefined value";
    }
  }

 private:
  static std::string prefix(const std::string& where) { return where.empty() ? "manifest" : where; }
  std::filesystem::path file_;
  std::vector<Diagnostic>& out_;
  std::vector<Diagnostic>& unfinished_;
};

bool is_placeholder(const std::string& value) { return value.rfind(kPlaceholder, 0) == 0; }

// upstream_status and what each value needs (docs/manifest.md, "Upstream status").
void load_upstream_status(Checker& c, const YAML::Node& node, const std::string& where, Patch& p) {
  if (auto url = c.string(node, "upstream_url", where, false)) p.upstream_url = *url;
  if (auto reason = c.string(node, "upstream_reason", where, false)) p.upstream_reason = *reason;
  if (auto commit = c.string(node, "upstream_commit", where, false)) {
    if (!std::regex_match(*commit, kSha1))
      c.error(node["upstream_commit"].Mark(),
              fmt::format("{}.upstream_commit: found \"{}\", expected the full 40-hex SHA of the upstream commit that "
                          "has the change (git rev-parse in the upstream prints it)",
                          where, *commit));
    else
      p.upstream_commit = *commit;
  }
  YAML::Node s = node["upstream_status"];
  if (!s) return;
  auto value = c.string(node, "upstream_status", where, false);
  if (!value) return;
  static const char* kChoices =
      "pending (not offered yet), submitted (with upstream_url), accepted or backport (with upstream_commit), denied "
      "or inappropriate (with upstream_reason)";
  if (is_placeholder(*value)) {
    c.unfinished(s.Mark(), fmt::format("{}.upstream_status: a placeholder left by patchmgr export; write one of {}",
                                       where, kChoices));
    return;
  }
  static const std::map<std::string, UpstreamStatus> names = {
      {"pending", UpstreamStatus::pending},   {"submitted", UpstreamStatus::submitted},
      {"accepted", UpstreamStatus::accepted}, {"backport", UpstreamStatus::backport},
      {"denied", UpstreamStatus::denied},     {"inappropriate", UpstreamStatus::inappropriate}};
  auto it = names.find(*value);
  if (it == names.end()) {
    c.error(s.Mark(), fmt::format("{}.upstream_status: found \"{}\", expected one of {}", where, *value, kChoices));
    return;
  }
  p.upstream_status = it->second;
  switch (p.upstream_status) {
    case UpstreamStatus::submitted:
      if (p.upstream_url.empty())
        c.error(s.Mark(), fmt::format("{}.upstream_status: submitted needs upstream_url: the pull request or the mail "
                                      "it was sent in (like https://github.com/owner/repo/pull/12)",
                                      where));
      break;
    case UpstreamStatus::accepted:
    case UpstreamStatus::backport:
      if (p.upstream_commit.empty() && !node["upstream_commit"])
        c.error(
            s.Mark(),
            fmt::format(
                "{}.upstream_status: {} needs upstream_commit: the full SHA of the upstream commit that has the change",
                where, *value));
      break;
    case UpstreamStatus::denied:
    case UpstreamStatus::inappropriate:
      if (p.upstream_reason.empty())
        c.error(s.Mark(),
                fmt::format("{}.upstream_status: {} needs upstream_reason: why upstream {} (like \"tunes kernels for "
                            "our GPUs only\")",
                            where, *value,
                            p.upstream_status == UpstreamStatus::denied ? "said no" : "is not the place for it"));
      break;
    default: break;
  }
}

void load_patch(Checker& c, const YAML::Node& node, size_t index, Manifest& m, const std::filesystem::path& root,
                std::map<std::string, YAML::Mark>& ids, std::vector<Diagnostic>& diags) {
  std::string where = fmt::format("patches[{}]", index);
  if (node.IsMap() && node["id"] && node["id"].IsScalar())
    where = fmt::format("patches[{}] ({})", index, node["id"].Scalar());
  static const std::vector<std::string> allowed = {
      "id",    "kind",  "file",  "sha256",   "title",           "purpose",      "status",          "enabled",
      "since", "files", "notes", "findings", "upstream_status", "upstream_url", "upstream_commit", "upstream_reason"};
  if (!c.map(node, where, allowed, {"id", "title", "purpose", "status", "since"})) return;
  Patch p;
  p.line = node.Mark().line + 1;
  for (auto it = node.begin(); it != node.end(); ++it)
    p.key_lines.emplace(it->first.Scalar(), it->first.Mark().line + 1);
  if (auto id = c.string(node, "id", where)) {
    p.id = *id;
    if (!std::regex_match(p.id, kSlug))
      c.error(node["id"].Mark(),
              fmt::format("{}.id: found \"{}\", expected lower-case letters, digits and '-' (like \"sdpa-attention\")",
                          where, p.id));
    if (auto it = ids.find(p.id); it != ids.end())
      c.error(node["id"].Mark(), fmt::format("{}.id: duplicate id \"{}\", first used at line {}; ids must be unique",
                                             where, p.id, it->second.line + 1));
    else
      ids.emplace(p.id, node["id"].Mark());
  }
  if (auto kind = c.string(node, "kind", where, false)) {
    if (*kind == "source")
      p.kind = PatchKind::source;
    else if (*kind == "runtime")
      p.kind = PatchKind::runtime;
    else
      c.error(node["kind"].Mark(), fmt::format("{}.kind: found \"{}\", expected \"source\" (a diff in patches/) or "
                                               "\"runtime\" (applied by the runtime at load time)",
                                               where, *kind));
  }
  if (auto title = c.string(node, "title", where)) p.title = *title;
  if (auto purpose = c.string(node, "purpose", where)) {
    p.purpose = *purpose;
    if (is_placeholder(p.purpose))
      c.unfinished(node["purpose"].Mark(), fmt::format("{}.purpose: a placeholder left by patchmgr export; say why the "
                                                       "patch exists: what it fixes or speeds up, and where",
                                                       where));
  }
  if (auto status = c.string(node, "status", where)) {
    if (*status == "implemented")
      p.status = PatchStatus::implemented;
    else if (*status == "experimental")
      p.status = PatchStatus::experimental;
    else if (*status == "disabled")
      p.status = PatchStatus::disabled;
    else if (*status == "upstreamed")
      p.status = PatchStatus::upstreamed;
    else
      c.error(node["status"].Mark(),
              fmt::format("{}.status: found \"{}\", expected one of implemented, experimental, disabled, upstreamed",
                          where, *status));
  }
  p.enabled = p.status == PatchStatus::implemented || p.status == PatchStatus::experimental;
  if (YAML::Node e = node["enabled"]) {
    bool v = false;
    if (!e.IsScalar() || !YAML::convert<bool>::decode(e, v)) {
      c.error(e.Mark(), fmt::format("{}.enabled: found {}, expected true or false", where, Checker::kind(e)));
    } else if (v && !p.enabled) {
      c.error(
          e.Mark(),
          fmt::format("{}.enabled: a patch with status {} cannot be enabled; set status to implemented or experimental",
                      where, to_string(p.status)));
    } else {
      p.enabled = v;
    }
  }
  if (auto since = c.string(node, "since", where)) {
    p.since = *since;
    if (!valid_date(p.since))
      c.error(node["since"].Mark(), fmt::format("{}.since: found \"{}\", expected a date YYYY-MM-DD", where, p.since));
  }
  if (YAML::Node f = node["files"]) {
    if (!f.IsSequence()) {
      c.error(f.Mark(), fmt::format("{}.files: found {}, expected a list of paths in the upstream repository", where,
                                    Checker::kind(f)));
    } else {
      for (const auto& item : f) {
        if (!item.IsScalar() || item.Scalar().empty())
          c.error(item.Mark(), fmt::format("{}.files: found {}, expected a path", where, Checker::kind(item)));
        else
          p.files.push_back(item.Scalar());
      }
    }
  }
  if (auto notes = c.string(node, "notes", where, false)) p.notes = *notes;
  load_upstream_status(c, node, where, p);
  if (p.status == PatchStatus::upstreamed && p.upstream_status != UpstreamStatus::unset &&
      p.upstream_status != UpstreamStatus::accepted && p.upstream_status != UpstreamStatus::backport)
    c.error(node["upstream_status"].Mark(), fmt::format("{}.upstream_status: found {}, but status is upstreamed; set "
                                                        "upstream_status: accepted with upstream_commit",
                                                        where, to_string(p.upstream_status)));
  if (YAML::Node fs = node["findings"]) {
    if (!fs.IsSequence()) {
      c.error(fs.Mark(), fmt::format("{}.findings: found {}, expected a list of {{date, text}} entries or strings",
                                     where, Checker::kind(fs)));
    } else {
      size_t k = 0;
      for (const auto& item : fs) {
        std::string fw = fmt::format("{}.findings[{}]", where, k++);
        if (item.IsScalar() && !item.Scalar().empty()) {
          p.findings.push_back({"", item.Scalar()});
        } else if (c.map(item, fw, {"date", "text"}, {"text"})) {
          Finding fd;
          if (auto t = c.string(item, "text", fw)) fd.text = *t;
          if (auto d = c.string(item, "date", fw, false)) {
            fd.date = *d;
            if (!valid_date(fd.date))
              c.error(item["date"].Mark(),
                      fmt::format("{}.date: found \"{}\", expected a date YYYY-MM-DD", fw, fd.date));
          }
          p.findings.push_back(fd);
        }
      }
    }
  }

  YAML::Node file = node["file"];
  YAML::Node sha = node["sha256"];
  if (p.kind == PatchKind::runtime) {
    if (file)
      c.error(file.Mark(),
              fmt::format("{}.file: a runtime patch has no patch file; remove \"file\" or set kind: source", where));
    if (sha) c.error(sha.Mark(), fmt::format("{}.sha256: a runtime patch has no patch file; remove \"sha256\"", where));
    m.patches.push_back(std::move(p));
    return;
  }
  if (!file)
    c.error(node.Mark(),
            fmt::format("{}: missing required key \"file\" (a source patch needs its patch file under patches/{}/)",
                        where, m.name));
  if (!sha)
    c.error(node.Mark(), fmt::format("{}: missing required key \"sha256\" (run sha256sum on the patch file)", where));
  if (p.files.empty() && !node["files"])
    c.error(node.Mark(),
            fmt::format("{}: missing required key \"files\" (the upstream files the patch touches)", where));
  std::optional<std::string> file_value = file ? c.string(node, "file", where) : std::nullopt;
  std::optional<std::string> sha_value = sha ? c.string(node, "sha256", where) : std::nullopt;
  if (sha) p.sha256_line = sha.Mark().line + 1;
  if (sha_value && !std::regex_match(*sha_value, kSha256)) {
    c.error(sha.Mark(),
            fmt::format("{}.sha256: found \"{}\", expected 64 lower-case hex digits (sha256sum of the patch file)",
                        where, *sha_value));
    sha_value.reset();
  }
  if (file_value) {
    p.file_field = *file_value;
    std::filesystem::path rel(*file_value);
    bool escapes =
        rel.is_absolute() || std::any_of(rel.begin(), rel.end(), [](const auto& part) { return part == ".."; });
    if (escapes) {
      c.error(file.Mark(), fmt::format("{}.file: \"{}\" leaves patches/{}/; give the file name relative to that "
                                       "directory, like \"0001-{}.patch\"",
                                       where, *file_value, m.name, p.id.empty() ? "slug" : p.id));
    } else if (rel.has_parent_path() || !std::regex_match(rel.filename().string(), kPatchName)) {
      c.error(file.Mark(), fmt::format("{}.file: found \"{}\", expected a file name NNNN-slug.patch directly under "
                                       "patches/{}/ (like \"0001-{}.patch\")",
                                       where, *file_value, m.name, p.id.empty() ? "slug" : p.id));
    } else {
      p.file = root / "patches" / m.name / rel;
      std::error_code ec;
      if (!std::filesystem::is_regular_file(p.file, ec)) {
        c.error(file.Mark(), fmt::format("{}.file: patches/{}/{} does not exist; add the patch file or fix the name",
                                         where, m.name, *file_value));
      } else {
        std::string content = read_file(p.file);
        std::string actual = sha256_hex(content);
        if (sha_value && actual != *sha_value)
          c.error(sha.Mark(), fmt::format("{}.sha256: patches/{}/{} has sha256 {}, the manifest expects {}; the patch "
                                          "file was edited (if on purpose, set sha256 to the new value)",
                                          where, m.name, *file_value, actual, *sha_value));
        p.sha256 = actual;
        p.parsed = git::parse_patch_file(content);
        for (const auto& prob : p.parsed.problems) diags.push_back({p.file, prob.line, 1, prob.message});
        if (p.parsed.ok() && !p.files.empty()) {
          std::set<std::string> listed(p.files.begin(), p.files.end());
          std::set<std::string> touched(p.parsed.touched_files.begin(), p.parsed.touched_files.end());
          if (listed != touched)
            c.error(node["files"].Mark(),
                    fmt::format("{}.files: lists [{}], but {} touches [{}]; make the list match the patch", where,
                                fmt::join(p.files, ", "), *file_value, fmt::join(p.parsed.touched_files, ", ")));
        }
      }
    }
  }
  m.patches.push_back(std::move(p));
}

const std::regex kEnvName("^[A-Za-z_][A-Za-z0-9_]*$");

// A relative path that stays below its base: no absolute path, no "..".
bool stays_below(const std::string& value) {
  std::filesystem::path p(value);
  return !p.is_absolute() && std::none_of(p.begin(), p.end(), [](const auto& part) { return part == ".."; });
}

// "600", "90s", "15m", "2h" -> seconds; 0 when not a positive duration.
int parse_timeout(const std::string& s) {
  static const std::regex kDuration("^([0-9]{1,6})([smh]?)$");
  std::smatch m;
  if (!std::regex_match(s, m, kDuration)) return 0;
  long v = std::stol(m[1]);
  if (m[2] == "m")
    v *= 60;
  else if (m[2] == "h")
    v *= 3600;
  return v > 0 && v <= 7 * 86400 ? int(v) : 0;
}

// One build step, or verify's regenerate (`named` = false: it has no name key).
std::optional<Step> load_step(Checker& c, const YAML::Node& node, const std::string& where, bool named,
                              const char* cwd_base) {
  std::vector<std::string> allowed = {"run", "when", "env", "cwd", "timeout"};
  std::vector<std::string> required = {"run"};
  if (named) allowed.insert(allowed.begin(), "name"), required.insert(required.begin(), "name");
  if (!c.map(node, where, allowed, required)) return std::nullopt;
  Step s;
  s.line = node.Mark().line + 1;
  if (named) {
    if (auto name = c.string(node, "name", where)) {
      s.name = *name;
      if (!std::regex_match(s.name, kSlug))
        c.error(node["name"].Mark(), fmt::format("{}.name: found \"{}\", expected lower-case letters, digits and '-' "
                                                 "(like \"editable-install\"); it names the step's log file",
                                                 where, s.name));
    }
  } else {
    s.name = "regenerate";
  }
  if (auto run = c.string(node, "run", where)) s.run = *run;
  if (auto when = c.string(node, "when", where, false)) s.when = *when;
  if (auto cwd = c.string(node, "cwd", where, false)) {
    if (!stays_below(*cwd))
      c.error(node["cwd"].Mark(),
              fmt::format("{}.cwd: \"{}\" leaves {}; give a directory relative to it (\".\" for {} itself)", where,
                          *cwd, cwd_base, cwd_base));
    else
      s.cwd = *cwd;
  }
  if (YAML::Node t = node["timeout"]) {
    int v = t.IsScalar() ? parse_timeout(t.Scalar()) : 0;
    if (v == 0)
      c.error(t.Mark(), fmt::format("{}.timeout: found {}, expected a time limit in seconds (600) or with a unit (90s, "
                                    "15m, 2h), at most 7 days",
                                    where, Checker::kind(t)));
    else
      s.timeout = v;
  }
  if (YAML::Node env = node["env"]) {
    if (!env.IsMap()) {
      c.error(
          env.Mark(),
          fmt::format("{}.env: found {}, expected a mapping of variable names to values (like {{PIP_NO_INDEX: \"1\"}})",
                      where, Checker::kind(env)));
    } else {
      for (auto it = env.begin(); it != env.end(); ++it) {
        std::string key = it->first.Scalar();
        if (!std::regex_match(key, kEnvName))
          c.error(it->first.Mark(),
                  fmt::format(
                      "{}.env: \"{}\" is not a variable name; use letters, digits and '_', not starting with a digit",
                      where, key));
        else if (!it->second.IsScalar())
          c.error(it->second.Mark(),
                  fmt::format("{}.env.{}: found {}, expected a string (quote numbers and booleans: \"1\")", where, key,
                              Checker::kind(it->second)));
        else
          s.env[key] = it->second.Scalar();
      }
    }
  }
  return s;
}

void load_build(Checker& c, const YAML::Node& node, Manifest& m) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) {
    c.error(
        node.Mark(),
        fmt::format("build: found {}, expected a list of steps, each with a name and a run command (or [] for none)",
                    Checker::kind(node)));
    return;
  }
  std::map<std::string, int> names;
  size_t i = 0;
  for (const auto& item : node) {
    std::string where = fmt::format("build[{}]", i++);
    if (item.IsMap() && item["name"] && item["name"].IsScalar())
      where = fmt::format("build[{}] ({})", i - 1, item["name"].Scalar());
    auto step = load_step(c, item, where, true, "the checkout");
    if (!step) continue;
    if (!step->name.empty()) {
      if (auto it = names.find(step->name); it != names.end()) {
        c.error(item["name"].Mark(), fmt::format("{}.name: duplicate step name \"{}\", first used at line {}; step "
                                                 "names must be unique (they name the log files)",
                                                 where, step->name, it->second));
        continue;
      }
      names.emplace(step->name, step->line);
    }
    m.build.push_back(std::move(*step));
  }
}

void load_verify(Checker& c, const YAML::Node& node, Manifest& m) {
  if (!c.map(node, "verify", {"tests", "fixtures", "regenerate"}, {"tests", "fixtures"})) return;
  m.verify.present = true;
  m.verify.line = node.Mark().line + 1;
  if (auto tests = c.string(node, "tests", "verify")) {
    m.verify.tests = *tests;
    if (tests->find_first_of(" \t\n") != std::string::npos)
      c.error(node["tests"].Mark(), fmt::format("verify.tests: found \"{}\", expected a GoogleTest filter without "
                                                "spaces (patterns joined by ':', like \"HTDemucsParity*:DemucsBag*\")",
                                                *tests));
  }
  // One directory, or a list of them (a component whose parity tests have several sets of reference data).
  auto add_fixtures = [&](const YAML::Node& item, const std::string& dir) {
    if (!stays_below(dir))
      c.error(item.Mark(), fmt::format("verify.fixtures: \"{}\" leaves the project root; give the reference data "
                                       "directory relative to it (like tests/fixtures/htdemucs)",
                                       dir));
    else
      m.verify.fixtures.push_back(dir);
  };
  if (YAML::Node f = node["fixtures"]; f && f.IsSequence()) {
    if (f.size() == 0) c.error(f.Mark(), "verify.fixtures: an empty list; give at least one reference data directory");
    for (const auto& item : f) {
      if (!item.IsScalar() || item.Scalar().empty())
        c.error(item.Mark(), "verify.fixtures: every entry must be a directory path (like tests/fixtures/htdemucs)");
      else
        add_fixtures(item, item.Scalar());
    }
  } else if (auto fixtures = c.string(node, "fixtures", "verify")) {
    add_fixtures(node["fixtures"], *fixtures);
  }
  if (YAML::Node r = node["regenerate"])
    m.verify.regenerate = load_step(c, r, "verify.regenerate", false, "the project root");
}

}  // namespace

namespace {

// The `bench:` section (docs/manifest.md, "Benchmarks").
std::vector<std::string> string_list(Checker& c, const YAML::Node& node, const std::string& where, const char* what) {
  std::vector<std::string> out;
  if (!node.IsSequence()) {
    c.error(node.Mark(), fmt::format("{}: found {}, expected a list of {}", where, Checker::kind(node), what));
    return out;
  }
  for (const auto& item : node) {
    if (!item.IsScalar() || item.Scalar().empty())
      c.error(item.Mark(), fmt::format("{}: found {}, expected {}", where, Checker::kind(item), what));
    else
      out.push_back(item.Scalar());
  }
  return out;
}

// The {name}s in `value`, in order.
std::vector<std::string> placeholders_in(const std::string& value) {
  static const std::regex kPlaceholder("\\{([A-Za-z0-9_-]*)\\}");
  std::vector<std::string> names;
  for (std::sregex_iterator it(value.begin(), value.end(), kPlaceholder), end; it != end; ++it)
    names.push_back((*it)[1]);
  return names;
}

// Every {name} in `value` must be a placeholder patchmgr bench fills in.
void check_placeholders(Checker& c, const YAML::Node& node, const std::string& value, const std::string& where,
                        const std::map<std::string, std::string>& vars) {
  for (const std::string& name : placeholders_in(value)) {
    const auto& builtin = bench_placeholders();
    if (std::find(builtin.begin(), builtin.end(), name) != builtin.end() || vars.count(name)) continue;
    std::vector<std::string> known = builtin;
    for (const auto& [k, v] : vars) known.push_back(k);
    c.error(node.Mark(), fmt::format("{}: unknown placeholder {{{}}}; known: {} (add it to bench.vars)", where, name,
                                     fmt::join(known, ", ")));
  }
}

// A value in bench.vars may use the placeholders known before the model and
// the track are (bench_var_placeholders), not other vars.
void check_var_placeholders(Checker& c, const YAML::Node& node, const std::string& value, const std::string& key) {
  const auto& allowed = bench_var_placeholders();
  for (const std::string& name : placeholders_in(value)) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
      c.error(node.Mark(), fmt::format("bench.vars.{}: {{{}}} cannot be used in a var; a var may use {}", key, name,
                                       fmt::join(allowed, ", ")));
  }
}

void load_bench(Checker& c, const YAML::Node& node, Manifest& m) {
  static const std::vector<std::string> allowed = {
      "model",   "checkpoint", "track",       "seconds", "precisions", "batch_sizes", "graphs", "separate_args",
      "prepare", "upstream",   "write_track", "python",  "vars",       "env",         "repeats"};
  if (!c.map(node, "bench", allowed, {"model"})) return;
  BenchSpec& b = m.bench;
  b.present = true;
  b.line = node.Mark().line + 1;
  static const std::regex kVar("^[a-z_][a-z0-9_]*$");
  if (YAML::Node vars = node["vars"]) {
    if (!vars.IsMap()) {
      c.error(vars.Mark(),
              fmt::format(
                  "bench.vars: found {}, expected a mapping of placeholder names to values (like {{deps: .deps/py}})",
                  Checker::kind(vars)));
    } else {
      for (auto it = vars.begin(); it != vars.end(); ++it) {
        std::string key = it->first.Scalar();
        const auto& builtin = bench_placeholders();
        if (!std::regex_match(key, kVar))
          c.error(
              it->first.Mark(),
              fmt::format("bench.vars: \"{}\" is not a placeholder name; use lower-case letters, digits and '_'", key));
        else if (std::find(builtin.begin(), builtin.end(), key) != builtin.end())
          c.error(
              it->first.Mark(),
              fmt::format("bench.vars: \"{}\" is a placeholder patchmgr fills in itself; choose another name", key));
        else if (!it->second.IsScalar())
          c.error(it->second.Mark(),
                  fmt::format("bench.vars.{}: found {}, expected a string", key, Checker::kind(it->second)));
        else {
          b.vars[key] = it->second.Scalar();
          check_var_placeholders(c, it->second, b.vars[key], key);
        }
      }
    }
  }
  auto text = [&](const char* key, std::string& into) {
    if (auto v = c.string(node, key, "bench", false)) {
      into = *v;
      check_placeholders(c, node[key], *v, fmt::format("bench.{}", key), b.vars);
    }
  };
  text("model", b.model);
  text("checkpoint", b.checkpoint);
  text("track", b.track);
  if (auto py = c.string(node, "python", "bench", false)) b.python = *py;
  if (YAML::Node s = node["seconds"]) {
    double v = 0;
    if (!s.IsScalar() || !YAML::convert<double>::decode(s, v) || !(v > 0) || v > 86400)
      c.error(s.Mark(),
              fmt::format("bench.seconds: found {}, expected the synthetic track's length in seconds (like 180)",
                          Checker::kind(s)));
    else
      b.seconds = v;
  }
  auto argv = [&](const char* key, std::vector<std::string>& into, const char* what) {
    YAML::Node n = node[key];
    if (!n) return;
    into = string_list(c, n, fmt::format("bench.{}", key), what);
    for (const auto& a : into) check_placeholders(c, n, a, fmt::format("bench.{}", key), b.vars);
  };
  argv("separate_args", b.separate_args, "arguments");
  argv("prepare", b.prepare, "a command and its arguments");
  argv("upstream", b.upstream, "a command and its arguments");
  argv("write_track", b.write_track, "arguments");
  if (node["prepare"] && b.prepare.empty() && node["prepare"].IsSequence())
    c.error(node["prepare"].Mark(), "bench.prepare: an empty command; remove the key or give the command");
  if (!b.write_track.empty() && b.upstream.empty())
    c.error(node["write_track"].Mark(), "bench.write_track: there is no bench.upstream command to add it to");
  auto choices = [&](const char* key, std::vector<std::string>& into, const std::vector<std::string>& allowed_values) {
    YAML::Node n = node[key];
    if (!n) return;
    for (const auto& v : string_list(c, n, fmt::format("bench.{}", key),
                                     fmt::format("values among {}", fmt::join(allowed_values, ", ")).c_str())) {
      if (std::find(allowed_values.begin(), allowed_values.end(), v) == allowed_values.end())
        c.error(n.Mark(),
                fmt::format("bench.{}: found \"{}\", expected one of {}", key, v, fmt::join(allowed_values, ", ")));
      else if (std::find(into.begin(), into.end(), v) != into.end())
        c.error(n.Mark(), fmt::format("bench.{}: \"{}\" twice", key, v));
      else
        into.push_back(v);
    }
  };
  choices("precisions", b.precisions, {"fp32", "fp16", "bf16"});
  // YAML 1.1 reads a bare on/off as a boolean; yaml-cpp keeps the text, so both spellings work.
  choices("graphs", b.graphs, {"on", "off"});
  if (YAML::Node r = node["repeats"]) {
    int v = 0;
    if (!r.IsScalar() || !YAML::convert<int>::decode(r, v) || v < 1 || v > 100)
      c.error(
          r.Mark(),
          fmt::format("bench.repeats: found {}, expected the number of timed runs per configuration, 1 to 100 (like 3)",
                      Checker::kind(r)));
    else
      b.repeats = v;
  }
  if (YAML::Node n = node["batch_sizes"]) {
    if (!n.IsSequence()) {
      c.error(n.Mark(), fmt::format("bench.batch_sizes: found {}, expected a list of batch sizes (like [1, 4, 8])",
                                    Checker::kind(n)));
    } else {
      for (const auto& item : n) {
        int v = 0;
        if (!item.IsScalar() || !YAML::convert<int>::decode(item, v) || v < 1 || v > 4096)
          c.error(item.Mark(), fmt::format("bench.batch_sizes: found {}, expected a batch size from 1 to 4096",
                                           Checker::kind(item)));
        else
          b.batch_sizes.push_back(v);
      }
    }
  }
  if (YAML::Node env = node["env"]) {
    if (!env.IsMap()) {
      c.error(
          env.Mark(),
          fmt::format(
              "bench.env: found {}, expected a mapping of variable names to values (like {{PYTHONUNBUFFERED: \"1\"}})",
              Checker::kind(env)));
    } else {
      static const std::regex kName("^[A-Za-z_][A-Za-z0-9_]*$");
      for (auto it = env.begin(); it != env.end(); ++it) {
        std::string key = it->first.Scalar();
        if (!std::regex_match(key, kName))
          c.error(
              it->first.Mark(),
              fmt::format(
                  "bench.env: \"{}\" is not a variable name; use letters, digits and '_', not starting with a digit",
                  key));
        else if (!it->second.IsScalar())
          c.error(it->second.Mark(), fmt::format("bench.env.{}: found {}, expected a string (quote numbers: \"1\")",
                                                 key, Checker::kind(it->second)));
        else
          b.env[key] = it->second.Scalar();
      }
    }
  }
}

}  // namespace

LoadResult load_manifest(const std::filesystem::path& file, const std::filesystem::path& root) {
  LoadResult result;
  auto& diags = result.diagnostics;
  Checker c(file, diags, result.unfinished);
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    diags.push_back({file, 1, 1, "cannot read the manifest file"});
    return result;
  } catch (const YAML::ParserException& e) {
    diags.push_back({file, e.mark.line + 1, e.mark.column + 1, fmt::format("YAML syntax error: {}", e.msg)});
    return result;
  }
  Manifest m;
  m.path = file;
  if (!c.map(doc, "manifest", {"schema", "name", "upstream", "checkout", "patches", "build", "verify", "bench"},
             {"schema", "name", "upstream", "patches"}))
    return result;

  if (YAML::Node s = doc["schema"]) {
    int v = 0;
    if (!s.IsScalar() || !YAML::convert<int>::decode(s, v) || v != kManifestSchema)
      c.error(s.Mark(), fmt::format("schema: found {}, expected {} (the only schema version this patchmgr reads)",
                                    Checker::kind(s), kManifestSchema));
  }
  std::string stem = file.stem().string();
  if (auto name = c.string(doc, "name", "manifest")) {
    m.name = *name;
    if (!std::regex_match(m.name, kSlug))
      c.error(doc["name"].Mark(),
              fmt::format("name: found \"{}\", expected lower-case letters, digits and '-'", m.name));
    else if (m.name != stem)
      c.error(doc["name"].Mark(),
              fmt::format("name: found \"{}\", but the file is {}; name the file {}.yaml or set name: {}", m.name,
                          file.filename().string(), m.name, stem));
  }
  if (m.name.empty()) m.name = stem;

  YAML::Node up = doc["upstream"];
  if (up && c.map(up, "upstream", {"url", "commit", "track"}, {"url", "commit", "track"})) {
    if (auto url = c.string(up, "url", "upstream")) m.url = *url;
    if (auto track = c.string(up, "track", "upstream")) m.track = *track;
    if (auto commit = c.string(up, "commit", "upstream")) {
      if (!std::regex_match(*commit, kSha1))
        c.error(up["commit"].Mark(), fmt::format("upstream.commit: found \"{}\", expected the full 40-hex commit SHA "
                                                 "(git rev-parse {} in the upstream prints it)",
                                                 *commit, *commit));
      else
        m.commit = *commit, m.commit_line = up["commit"].Mark().line + 1;
    }
  }

  m.checkout_field = "upstream/" + m.name;
  if (auto co = c.string(doc, "checkout", "manifest", false)) m.checkout_field = *co;
  m.checkout = std::filesystem::weakly_canonical(root / m.checkout_field);
  if (m.checkout == std::filesystem::weakly_canonical(root))
    c.error(doc["checkout"].Mark(),
            "checkout: the checkout cannot be the project root itself; use a directory such as upstream/<name>");

  YAML::Node patches = doc["patches"];
  if (patches) {
    if (!patches.IsSequence()) {
      if (!patches.IsNull())
        c.error(patches.Mark(),
                fmt::format("patches: found {}, expected a list of patches (or [] for none)", Checker::kind(patches)));
    } else {
      std::map<std::string, YAML::Mark> ids;
      size_t i = 0;
      for (const auto& node : patches) load_patch(c, node, i++, m, root, ids, diags);
      // File numbers must follow the series order, or a directory listing would mislead.
      std::string last;
      for (const auto& p : m.patches) {
        if (p.kind != PatchKind::source || p.file_field.empty()) continue;
        if (!last.empty() && p.file_field <= last)
          diags.push_back({file, p.line, 1,
                           fmt::format("patches ({}): file {} comes after {} in the series but sorts before it; "
                                       "renumber the files to follow the series order",
                                       p.id, p.file_field, last)});
        last = p.file_field;
      }
    }
  }
  if (YAML::Node b = doc["build"]) load_build(c, b, m);
  if (YAML::Node v = doc["verify"]) load_verify(c, v, m);
  if (YAML::Node b = doc["bench"]) load_bench(c, b, m);
  if (diags.empty()) result.manifests.push_back(std::move(m));
  return result;
}

LoadResult load_all_manifests(const std::filesystem::path& root) {
  LoadResult all;
  auto dir = root / "manifests";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    all.diagnostics.push_back(
        {dir, 1, 1,
         fmt::format("no manifests/ directory in {}; run patchmgr from the project root or pass --root",
                     root.string())});
    return all;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && (e.path().extension() == ".yaml" || e.path().extension() == ".yml"))
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    LoadResult one = load_manifest(f, root);
    for (auto& m : one.manifests) all.manifests.push_back(std::move(m));
    for (auto& d : one.diagnostics) all.diagnostics.push_back(std::move(d));
    for (auto& d : one.unfinished) all.unfinished.push_back(std::move(d));
  }
  return all;
}

}  // namespace patchmgr
