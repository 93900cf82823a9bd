#include "patchmgr/git/quote.h"

namespace patchmgr::git {
namespace {

// The escapes git writes for control characters, by character.
char short_escape(unsigned char c) {
  switch (c) {
    case '\a': return 'a';
    case '\b': return 'b';
    case '\t': return 't';
    case '\n': return 'n';
    case '\v': return 'v';
    case '\f': return 'f';
    case '\r': return 'r';
    case '"': return '"';
    case '\\': return '\\';
    default: return 0;
  }
}

bool needs_quote(unsigned char c) { return c < 0x20 || c == '"' || c == '\\' || c == 0x7f || c >= 0x80; }

}  // namespace

bool path_needs_quotes(const std::string& path) {
  for (unsigned char c : path)
    if (needs_quote(c)) return true;
  return false;
}

std::string quote_path(const std::string& path) {
  if (!path_needs_quotes(path)) return path;
  std::string out = "\"";
  for (unsigned char c : path) {
    if (!needs_quote(c)) {
      out += char(c);
    } else if (char e = short_escape(c)) {
      out += '\\';
      out += e;
    } else {
      out += '\\';
      out += char('0' + ((c >> 6) & 3));
      out += char('0' + ((c >> 3) & 7));
      out += char('0' + (c & 7));
    }
  }
  return out + "\"";
}

std::optional<std::string> unquote_path(const std::string& text, size_t& pos) {
  if (pos >= text.size() || text[pos] != '"') return std::nullopt;
  std::string out;
  size_t i = pos + 1;
  while (i < text.size()) {
    char c = text[i++];
    if (c == '"') {
      pos = i;
      return out;
    }
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= text.size()) return std::nullopt;
    char e = text[i++];
    switch (e) {
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'v': out += '\v'; break;
      case 'f': out += '\f'; break;
      case 'r': out += '\r'; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      default: {
        if (e < '0' || e > '3' || i + 1 >= text.size()) return std::nullopt;
        char d1 = text[i], d2 = text[i + 1];
        if (d1 < '0' || d1 > '7' || d2 < '0' || d2 > '7') return std::nullopt;
        out += char(((e - '0') << 6) | ((d1 - '0') << 3) | (d2 - '0'));
        i += 2;
      }
    }
  }
  return std::nullopt;
}

}  // namespace patchmgr::git
