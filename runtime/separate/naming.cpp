// Output names (demucs' --filename) and --two-stems names.
// See naming.h.
#include "runtime/separate/naming.h"

#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/error.h"
#include "runtime/separate/model_catalog.h"

namespace stemkit::separate {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kVariables = "{track}, {trackext}, {stem}, {ext}";

std::vector<std::string_view> split_components(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    parts.push_back(s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace

fs::path output_root(const std::optional<fs::path>& out_option, std::string_view model_name) {
  fs::path out = out_option && !out_option->empty() ? *out_option : fs::path(kDefaultOutputDir);
  return out / std::string(model_name);
}

std::string output_model_name(std::string_view name_or_path) {
  if (looks_like_model_path(name_or_path)) return fs::path(std::string(name_or_path)).stem().string();
  return std::string(name_or_path);
}

TrackName split_track_name(const fs::path& input) {
  std::string name = input.filename().string();
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

FilenameTemplate::FilenameTemplate(std::string_view text) : text_(text) {
  auto fail = [&](const std::string& why) { throw Error("--filename '{}': {}", text_, why); };
  if (text.empty()) fail(fmt::format("empty; the default is '{}'", kDefaultFilenameTemplate));
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) pieces_.push_back({Kind::literal, literal});
    literal.clear();
  };
  bool has_stem = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      fail("single '}' (write '}}' for a literal brace)");
    }
    if (c != '{') {
      literal += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
      continue;
    }
    size_t close = text.find('}', i + 1);
    if (close == std::string_view::npos) fail("'{' is never closed (write '{{' for a literal brace)");
    std::string_view field = text.substr(i + 1, close - i - 1);
    static const std::map<std::string_view, Kind> kinds = {
        {"track", Kind::track}, {"trackext", Kind::trackext}, {"stem", Kind::stem}, {"ext", Kind::ext}};
    auto it = kinds.find(field);
    if (it == kinds.end()) {
      if (field.find_first_of(":!") != std::string_view::npos)
        fail(fmt::format("'{{{}}}' has a format spec or conversion, which is not supported; the variables are {}",
                         field, kVariables));
      fail(fmt::format("unknown variable '{{{}}}'; the variables are {} (write '{{{{' and '}}}}' for literal braces)",
                       field, kVariables));
    }
    flush();
    pieces_.push_back({it->second, {}});
    has_stem = has_stem || it->second == Kind::stem;
    i = close;
  }
  flush();
  if (!has_stem) fail("has no {stem}, so every stem would be written to the same file");
  if (text.front() == '/') fail("is an absolute path; it must be relative to the output directory (-o)");
  if (text.back() == '/') fail("ends with '/', so it names a directory, not a file");
  // Literal components: an empty one ("a//b") or ".." (which would leave the output directory).
  for (std::string_view component : split_components(text)) {
    if (component.empty()) fail("has an empty path component ('//')");
    if (component == "..") fail("has a '..' component, which would write outside the output directory (-o)");
  }
}

fs::path FilenameTemplate::render(const TrackName& track, std::string_view stem, std::string_view ext) const {
  std::string out;
  for (const auto& piece : pieces_) {
    switch (piece.kind) {
      case Kind::literal: out += piece.literal; break;
      case Kind::track: out += track.track; break;
      case Kind::trackext: out += track.trackext; break;
      case Kind::stem: out += stem; break;
      case Kind::ext: out += ext; break;
    }
  }
  bool bad = out.empty() || out.front() == '/' || out.find('\0') != std::string::npos;
  for (std::string_view component : split_components(out))
    bad = bad || component.empty() || component == "." || component == "..";
  if (bad)
    throw Error(
        "--filename '{}' gives '{}' for track '{}' ({{track}}='{}', {{trackext}}='{}', {{stem}}='{}'), which is not a "
        "file path below the output directory; rename the input or change --filename",
        text_, out, track.track + (track.trackext.empty() ? "" : "." + track.trackext), track.track, track.trackext,
        stem);
  return fs::path(out);
}

OtherMethod parse_other_method(std::string_view text) {
  if (text == "none") return OtherMethod::none;
  if (text == "add") return OtherMethod::add;
  if (text == "minus") return OtherMethod::minus;
  throw Error("--other-method '{}': must be none, add or minus", text);
}

std::vector<std::string> two_stem_names(std::string_view stem, OtherMethod other) {
  std::vector<std::string> names = {std::string(stem)};
  if (other == OtherMethod::add) names.push_back("no_" + std::string(stem));
  if (other == OtherMethod::minus) names.push_back("minus_" + std::string(stem));
  return names;
}

void check_two_stems(std::string_view stem, const std::vector<std::string>& sources, std::string_view model_name) {
  for (const auto& s : sources)
    if (s == stem) return;
  throw Error("--two-stems: stem '{}' is not in model {}; STEM must be one of {}", stem, model_name,
              fmt::join(sources, ", "));
}

std::vector<PlannedOutput> plan_outputs(const std::vector<fs::path>& inputs, const std::vector<std::string>& stems,
                                        const FilenameTemplate& name_template, const fs::path& root,
                                        std::string_view ext) {
  for (size_t i = 0; i < stems.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (stems[i] == stems[j])
        throw Error(
            "the model's stems name '{}' twice ({}); a model's sources need distinct names: its package is "
            "damaged or was edited",
            stems[i], fmt::join(stems, ", "));
  std::vector<PlannedOutput> plan;
  std::map<fs::path, size_t> seen;
  for (const auto& input : inputs) {
    TrackName name = split_track_name(input);
    for (const auto& stem : stems) {
      PlannedOutput out{input, stem, (root / name_template.render(name, stem, ext)).lexically_normal()};
      auto [it, inserted] = seen.emplace(out.path, plan.size());
      if (!inserted) {
        const PlannedOutput& first = plan[it->second];
        throw Error("--filename '{}' writes {} twice: for {} ({}) and for {} ({}); {}", name_template.text(),
                    out.path.string(), first.input.string(), first.stem, input.string(), stem,
                    first.input == input ? "the same input is given twice"
                    : name_template.text().find("{track}") == std::string::npos
                        ? "put {track} in --filename so each input gets its own files"
                        : "two inputs have the same file name: rename one, or separate them in two runs with "
                          "different -o");
      }
      plan.push_back(std::move(out));
    }
  }
  return plan;
}

}  // namespace stemkit::separate
