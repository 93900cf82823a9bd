// The mail headers of a patch file, encoded and folded as `git format-patch`
// writes them and decoded as `git am` (git mailinfo) reads them: RFC 2047
// encoded-words for non-ASCII text ("=?UTF-8?q?P=C3=A4tch?="), RFC 822 quoting
// for names with specials ("\"A. U. Thor\""), and folding at 78 columns.
#pragma once

#include <string>

namespace patchmgr::git {

// "From: <name> <email>\n", as git's pp_user_info writes it for a mail.
std::string from_header(const std::string& name, const std::string& email);

// "Subject: [PATCH] <subject>\n", folded or encoded as git's pp_email_subject.
std::string subject_header(const std::string& subject);

// Whether git adds the MIME-Version / Content-Type / Content-Transfer-Encoding
// headers for a commit message: when it holds a non-ASCII byte.
bool needs_8bit_headers(const std::string& message);

// Decodes the RFC 2047 encoded-words of an unfolded header value ("Q" and "B"
// encodings; UTF-8 and US-ASCII charsets, ISO-8859-1 converted to UTF-8).
// Whitespace between two adjacent encoded-words is dropped (RFC 2047, 6.2).
// Returns false, with `error` set, for an encoded-word that does not decode.
bool decode_header(const std::string& value, std::string& out, std::string& error);

}  // namespace patchmgr::git
