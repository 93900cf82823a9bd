// git's C-style quoting of paths (quote_c_style in git's quote.c): a path
// with a '"', a '\\', a control character or a non-ASCII byte is written in
// double quotes with C escapes (\t, \", \\, \303\244 for "ä"), as diff
// headers and diffstats show it with core.quotePath at its default.
#pragma once

#include <optional>
#include <string>

namespace patchmgr::git {

bool path_needs_quotes(const std::string& path);

// `path` as git writes it: unchanged, or quoted.
std::string quote_path(const std::string& path);

// The inverse for a quoted string at text[pos] (which is '"'): the path, and
// `pos` moved past the closing quote. Nothing when the quoting is malformed
// (no closing quote, an unknown escape, an octal escape above \377).
std::optional<std::string> unquote_path(const std::string& text, size_t& pos);

}  // namespace patchmgr::git
