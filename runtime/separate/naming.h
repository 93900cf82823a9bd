// Where the runner writes each stem: demucs' --filename template ({track},
// {trackext}, {stem}, {ext}; default "{track}/{stem}.{ext}") under the output
// root `-o DIR/<model>` (DIR defaulting to "separated", as demucs'
// `out / args.name`), and the stem names of --two-stems. Templates that name
// unknown variables or could write outside the output root are refused before
// any work is done, and so are two outputs landing on the same path. Which
// inputs a run reads is inputs.h's.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stemkit::separate {

inline constexpr std::string_view kDefaultFilenameTemplate = "{track}/{stem}.{ext}";
inline constexpr std::string_view kDefaultOutputDir = "separated";

// `out_option` (-o; "separated" when absent) / `model_name`, as demucs does.
std::filesystem::path output_root(const std::optional<std::filesystem::path>& out_option, std::string_view model_name);

// The model name used for the output root: a catalog name as it is, a model
// given as a file by the file's name without its extension
// ("/x/955717e8-8726e21a.th" -> "955717e8-8726e21a").
std::string output_model_name(std::string_view name_or_path);

// demucs' `track.name.rsplit(".", 1)`: "a.b.wav" -> {"a.b", "wav"}. A name
// without a dot gives {name, ""} (demucs repeats the whole name as trackext).
struct TrackName {
  std::string track;     // {track}
  std::string trackext;  // {trackext}, without the dot
};
TrackName split_track_name(const std::filesystem::path& input);

// A parsed --filename template, with Python str.format's escapes: "{{" and
// "}}" are literal braces. Throws stemkit::Error, quoting the template, for an
// unknown variable, a format spec or conversion ("{stem:>8}", "{stem!r}"), an
// unmatched brace, no {stem} (every stem would overwrite the same file), an
// absolute path, an empty path component or a trailing '/', and a '..'
// component.
class FilenameTemplate {
 public:
  explicit FilenameTemplate(std::string_view text = kDefaultFilenameTemplate);
  const std::string& text() const { return text_; }

  // The relative path for one stem of one track. Throws stemkit::Error when the
  // values make it leave the output root or leave an empty or '.'/'..'
  // component (an input named ".wav" under "{track}/...", say).
  std::filesystem::path render(const TrackName& track, std::string_view stem, std::string_view ext) const;

 private:
  enum class Kind { literal, track, trackext, stem, ext };
  struct Piece {
    Kind kind;
    std::string literal;
  };
  std::string text_;
  std::vector<Piece> pieces_;
};

// --other-method, how demucs makes the second file of --two-stems.
enum class OtherMethod {
  none,   // only STEM
  add,    // STEM and no_STEM = the sum of the other stems (demucs' default)
  minus,  // STEM and minus_STEM = the mix minus STEM
};
OtherMethod parse_other_method(std::string_view text);  // "none", "add", "minus"; throws stemkit::Error

// The stem names written for --two-stems STEM, as demucs names them:
// {STEM}, {STEM, "no_STEM"} or {STEM, "minus_STEM"}.
std::vector<std::string> two_stem_names(std::string_view stem, OtherMethod other);

// Throws stemkit::Error unless `stem` is one of the model's `sources`:
//   --two-stems: stem 'voice' is not in model htdemucs; STEM must be one of drums, bass, other, vocals
void check_two_stems(std::string_view stem, const std::vector<std::string>& sources, std::string_view model_name);

// One file the runner will write.
struct PlannedOutput {
  std::filesystem::path input;
  std::string stem;
  std::filesystem::path path;  // root / template.render(...)
};

// Every (input, stem) output under `root`, inputs outer, stems inner. Throws
// stemkit::Error when `stems` names a stem twice (a damaged package), or two
// outputs are the same path (the template lacks {track} and there are several
// inputs, or the same input is given twice).
std::vector<PlannedOutput> plan_outputs(const std::vector<std::filesystem::path>& inputs,
                                        const std::vector<std::string>& stems, const FilenameTemplate& name_template,
                                        const std::filesystem::path& root, std::string_view ext);

}  // namespace stemkit::separate
