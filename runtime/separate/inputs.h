// The inputs of a run as people give them: files and folders on the command
// line, `--inputs-from LIST`, and `-` for a list on stdin (find ... | separate -).
// Folders are walked recursively for audio files (by extension, from one
// list), in a stable order; every file is separated once, however many names
// it was given by (the same path twice, ./a and a, symlinks, hard links: one
// device and inode). Everything wrong with the inputs is reported at once,
// before any work (docs/cli.md, "Inputs").
#pragma once

#include <filesystem>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stemkit::separate {

// The file name extensions (lower case, no dot) a folder's files are taken by:
// what libsndfile and FFmpeg read, audio and video containers alike.
const std::vector<std::string_view>& audio_extensions();
// True when `path`'s extension, in any case, is one of audio_extensions().
bool has_audio_extension(const std::filesystem::path& path);

struct InputSet {
  std::vector<std::filesystem::path> files;  // in order: arguments as given, a folder's files sorted by path
  // Said before the run starts: each folder's count ("music: 12 audio files, 3 other files skipped").
  std::vector<std::string> folders;
  // Said even with --quiet: an input that is the same file as an earlier one, separated once.
  std::vector<std::string> duplicates;
};

// `arguments`: the FILE... of the command line, each a file, a folder or "-"
// (a list read from `standard_input`); `list_file`: --inputs-from ("-": the
// same). Lists hold one path per line; blank lines and lines whose first
// non-blank character is '#' are skipped; surrounding whitespace, a trailing
// '\r' and a UTF-8 BOM are ignored; relative paths are taken relative to the
// list file's folder (stdin's: the current one); a folder in a list is walked
// as on the command line. In a folder, names beginning with '.' are skipped
// (.git, macOS' ._song.flac), symlinks are followed, a folder reached twice is
// walked once. A file named explicitly is taken whatever its extension.
//
// Throws stemkit::Error listing every problem: a path that does not exist
// ("<list>:<line>: <path> does not exist" for a list's), a folder without
// audio files or that cannot be read, a list that cannot be read or lists
// nothing, stdin named twice.
InputSet collect_inputs(const std::vector<std::string>& arguments, const std::optional<std::string>& list_file,
                        std::istream& standard_input);

// The paths a list names, in order, each with where it was named
// ("list.txt:3"), relative paths resolved against `base`; `name` is the list
// as messages show it. Nothing is checked against the file system.
struct ListedPath {
  std::filesystem::path path;
  std::string text;   // as the line has it
  std::string where;  // "<name>:<line>"
};
std::vector<ListedPath> parse_input_list(std::istream& in, const std::filesystem::path& base, const std::string& name);

}  // namespace stemkit::separate
