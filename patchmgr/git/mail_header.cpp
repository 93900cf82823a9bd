#include "patchmgr/git/mail_header.h"

#include <cctype>

#include <fmt/format.h>

namespace patchmgr::git {
namespace {

// git's mail width (pretty.c, format-patch's max_length).
constexpr int kWidth = 78;
// RFC 2047's limit on a line holding encoded-words, as git applies it.
constexpr int kEncodedWidth = 76;

bool non_ascii(unsigned char c) { return c >= 0x80; }

bool needs_rfc2047(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if (non_ascii(c) || c == '\n') return true;
    if (c == '=' && i + 1 < s.size() && s[i + 1] == '?') return true;
  }
  return false;
}

bool needs_rfc822_quoting(const std::string& s) {
  for (char c : s)
    if (std::string_view("()<>[]:;@,.\"\\").find(c) != std::string_view::npos) return true;
  return false;
}

size_t last_line_length(const std::string& s) {
  size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s.size() : s.size() - nl - 1;
}

// Length of the UTF-8 character that starts at s[i] (1 for a stray byte).
size_t utf8_length(const std::string& s, size_t i) {
  unsigned char c = s[i];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 1;
  return n;
}

enum class Rfc2047 { address, subject };

// git's is_rfc2047_special(): what must be written as =XX in an encoded-word.
bool is_special(unsigned char c, Rfc2047 type) {
  if (non_ascii(c) || c <= ' ' || c == 0x7f || c == '=' || c == '?' || c == '_') return true;
  if (type != Rfc2047::address) return false;
  return !(std::isalnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/');
}

// git's add_rfc2047(): one encoded-word per line, each line within 76 columns,
// never splitting a character.
void add_rfc2047(std::string& sb, const std::string& text, Rfc2047 type) {
  size_t line_len = last_line_length(sb);
  sb += "=?UTF-8?q?";
  line_len += 10;
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_length(text, i);
    bool special = n > 1 || is_special(text[i], type);
    size_t encoded_len = special ? 3 * n : 1;
    if (line_len + encoded_len + 2 > kEncodedWidth) {
      sb += "?=\n =?UTF-8?q?";
      line_len = 11;
    }
    for (size_t k = 0; k < n; ++k)
      sb += special ? fmt::format("={:02X}", static_cast<unsigned char>(text[i + k])) : std::string(1, text[i + k]);
    line_len += encoded_len;
    i += n;
  }
  sb += "?=";
}

// git's strbuf_add_wrapped_text() for ASCII text (non-ASCII header text is
// RFC 2047-encoded instead, so it never reaches here): greedy word wrap at
// `width`, the first line already `-indent1` columns in, the others indented
// by `indent2`.
void add_wrapped(std::string& buf, const std::string& s, int indent1, int indent2, int width) {
  size_t text = 0, bol = 0;
  size_t space = std::string::npos;
  int w = indent1, indent = indent1;
  if (indent < 0) {
    w = -indent;
    space = 0;
  }
  auto at = [&](size_t k) { return k < s.size() ? s[k] : '\0'; };
  for (;;) {
    char c = at(text);
    if (!c || std::isspace(static_cast<unsigned char>(c))) {
      if (w <= width || space == std::string::npos) {
        size_t start = bol;
        if (!c && text == start) return;
        if (space != std::string::npos)
          start = space;
        else
          buf.append(size_t(indent > 0 ? indent : 0), ' ');
        buf.append(s, start, text - start);
        if (!c) return;
        space = text;
        if (c == '\t')
          w |= 0x07;
        else if (c == '\n') {
          ++space;
          if (at(space) == '\n') {
            buf += '\n';
            goto new_line;
          } else if (!std::isalnum(static_cast<unsigned char>(at(space)))) {
            goto new_line;
          } else {
            buf += ' ';
          }
        }
        ++w;
        ++text;
      } else {
      new_line:
        buf += '\n';
        text = bol = space + (std::isspace(static_cast<unsigned char>(at(space))) ? 1 : 0);
        space = std::string::npos;
        w = indent = indent2;
      }
      continue;
    }
    ++w;
    ++text;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool decode_base64(const std::string& in, std::string& out) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    size_t v = chars.find(c);
    if (v == std::string::npos) return false;
    acc = (acc << 6) | unsigned(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return true;
}

// One encoded-word's text in `charset`/`encoding`, to UTF-8.
bool decode_word(const std::string& charset, char encoding, const std::string& text, std::string& out,
                 std::string& error) {
  std::string bytes;
  if (encoding == 'q' || encoding == 'Q') {
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '_') {
        bytes += ' ';
      } else if (text[i] == '=') {
        int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          error = fmt::format("bad =XX escape in the encoded-word \"{}\"", text);
          return false;
        }
        bytes += char(hi * 16 + lo);
        i += 2;
      } else {
        bytes += text[i];
      }
    }
  } else if (encoding == 'b' || encoding == 'B') {
    if (!decode_base64(text, bytes)) {
      error = fmt::format("bad base64 in the encoded-word \"{}\"", text);
      return false;
    }
  } else {
    error = fmt::format("unknown encoding '{}' in an encoded-word (expected q or b)", encoding);
    return false;
  }
  std::string cs;
  for (char c : charset) cs += char(std::tolower(static_cast<unsigned char>(c)));
  if (cs == "utf-8" || cs == "utf8" || cs == "us-ascii") {
    out += bytes;
  } else if (cs == "iso-8859-1" || cs == "latin1") {
    for (unsigned char c : bytes) {
      if (c < 0x80) {
        out += char(c);
      } else {
        out += char(0xc0 | (c >> 6));
        out += char(0x80 | (c & 0x3f));
      }
    }
  } else {
    error = fmt::format(
        "unsupported charset \"{}\" in an encoded-word (write the patch with git format-patch, which uses UTF-8)",
        charset);
    return false;
  }
  return true;
}

}  // namespace

std::string from_header(const std::string& name, const std::string& email) {
  std::string sb = "From: ";
  int max_length = kWidth;
  if (needs_rfc2047(name)) {
    add_rfc2047(sb, name, Rfc2047::address);
    max_length = kEncodedWidth;
  } else if (needs_rfc822_quoting(name)) {
    std::string quoted = "\"";
    for (char c : name) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    quoted += '"';
    add_wrapped(sb, quoted, -6, 1, max_length);
  } else {
    add_wrapped(sb, name, -6, 1, max_length);
  }
  if (size_t(max_length) < last_line_length(sb) + 2 + email.size() + 1) sb += '\n';
  sb += " <" + email + ">\n";
  return sb;
}

std::string subject_header(const std::string& subject) {
  std::string sb = "Subject: [PATCH] ";
  if (needs_rfc2047(subject))
    add_rfc2047(sb, subject, Rfc2047::subject);
  else
    add_wrapped(sb, subject, -int(last_line_length(sb)), 1, kWidth);
  return sb + "\n";
}

bool needs_8bit_headers(const std::string& message) {
  for (unsigned char c : message)
    if (non_ascii(c)) return true;
  return false;
}

bool decode_header(const std::string& value, std::string& out, std::string& error) {
  out.clear();
  size_t i = 0;
  bool last_was_word = false;
  std::string pending_space;
  while (i < value.size()) {
    size_t start = value.find("=?", i);
    if (start == std::string::npos) {
      out += pending_space + value.substr(i);
      return true;
    }
    std::string between = value.substr(i, start - i);
    // Parse "=?charset?e?text?=".
    size_t q1 = value.find('?', start + 2);
    size_t q2 = q1 == std::string::npos ? q1 : value.find('?', q1 + 1);
    size_t end = q2 == std::string::npos ? q2 : value.find("?=", q2 + 1);
    if (end == std::string::npos || q2 != q1 + 2) {
      // Not an encoded-word: plain text.
      out += pending_space + between + "=?";
      pending_space.clear();
      last_was_word = false;
      i = start + 2;
      continue;
    }
    bool only_space = between.find_first_not_of(" \t") == std::string::npos;
    if (!(last_was_word && only_space)) out += pending_space + between;
    pending_space.clear();
    if (!decode_word(value.substr(start + 2, q1 - start - 2), value[q1 + 1], value.substr(q2 + 1, end - q2 - 1), out,
                     error))
      return false;
    last_was_word = true;
    i = end + 2;
  }
  return true;
}

}  // namespace patchmgr::git
