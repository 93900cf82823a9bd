#include "patchmgr/verify/fixtures.h"

#include <algorithm>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/util/fs.h"

namespace fs = std::filesystem;

namespace patchmgr {

namespace {

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::string short_hash(const std::string& s) { return s.size() > 12 ? s.substr(0, 12) : s; }

}  // namespace

std::vector<std::string> block_differences(const std::string& recorded, const std::string& current) {
  std::vector<std::string> out;
  std::istringstream a(recorded), b(current);
  std::string ra, rb;
  std::getline(a, ra);
  std::getline(b, rb);
  auto pa = words(ra), pb = words(rb);
  std::string pin_a = pa.size() > 1 ? pa[1] : "?", pin_b = pb.size() > 1 ? pb[1] : "?";
  if (pin_a != pin_b) out.push_back(fmt::format("pin {} -> {}", short_hash(pin_a), short_hash(pin_b)));
  // Patch lines: "  <kind> <id> <enabled|opt-in|...> [sha256]", keyed by id.
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> la, lb;
  std::string line;
  while (std::getline(a, line))
    if (auto w = words(line); w.size() >= 2) la[w[1]] = w, order.push_back(w[1]);
  while (std::getline(b, line))
    if (auto w = words(line); w.size() >= 2) {
      if (!la.count(w[1])) order.push_back(w[1]);
      lb[w[1]] = w;
    }
  for (const auto& id : order) {
    if (!lb.count(id)) {
      out.push_back(fmt::format("patch {}: no longer in the manifest", id));
      continue;
    }
    if (!la.count(id)) {
      out.push_back(fmt::format("patch {}: new", id));
      continue;
    }
    const auto &x = la[id], &y = lb[id];
    if (x == y) continue;
    std::vector<std::string> what;
    if (x[0] != y[0]) what.push_back(fmt::format("kind {} -> {}", x[0], y[0]));
    std::string sx = x.size() > 2 ? x[2] : "", sy = y.size() > 2 ? y[2] : "";
    if (sx != sy) what.push_back(fmt::format("{} -> {}", sx, sy));
    std::string hx = x.size() > 3 ? x[3] : "", hy = y.size() > 3 ? y[3] : "";
    if (hx != hy) what.push_back(fmt::format("patch file sha256 {} -> {}", short_hash(hx), short_hash(hy)));
    out.push_back(fmt::format("patch {}: {}", id, fmt::join(what, ", ")));
  }
  if (out.empty() && recorded != current)
    out.push_back("the recorded block differs in form (made by another patchmgr?)");
  return out;
}

FixtureCheck check_fixtures(const fs::path& dir, const std::string& component, const std::string& current) {
  FixtureCheck c;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    c.detail = fmt::format("{} does not exist", dir.string());
    return c;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::map<std::string, std::vector<std::string>> stale;  // recorded block -> files
  for (const auto& f : files) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(f));
    } catch (const std::exception&) {
      continue;
    }
    if (!j.is_object() || !j.contains("fingerprint") || !j["fingerprint"].is_object() ||
        !j["fingerprint"].contains(component) || !j["fingerprint"][component].is_string())
      continue;
    c.files.push_back(f.filename().string());
    std::string recorded = j["fingerprint"][component].get<std::string>();
    if (recorded != current) stale[recorded].push_back(f.filename().string());
  }
  if (c.files.empty()) {
    c.detail = fmt::format(
        "no *.json in {} records a fingerprint for {} (fingerprint.{}); make the reference data with the project's "
        "script",
        dir.string(), component, component);
    return c;
  }
  if (stale.empty()) {
    c.state = FixtureCheck::State::current;
    return c;
  }
  c.state = FixtureCheck::State::stale;
  std::vector<std::string> parts;
  for (const auto& [recorded, names] : stale)
    parts.push_back(fmt::format("{} made from another {} patch set ({})", fmt::join(names, ", "), component,
                                fmt::join(block_differences(recorded, current), "; ")));
  c.detail = fmt::format("{}", fmt::join(parts, "; "));
  return c;
}

}  // namespace patchmgr
