// SHA-256 (FIPS 180-4) of a byte string, as lower-case hex: the `sha256` of
// each patch file, the manifest a stopped rebase started from, and the
// patch-set fingerprint. OpenSSL's libcrypto computes it: a maintained
// implementation (using the CPU's SHA instructions where it has them) rather
// than one of our own to keep correct.
#pragma once

#include <string>
#include <string_view>

namespace patchmgr {

// Throws Error(failed) only when libcrypto itself fails (out of memory).
std::string sha256_hex(std::string_view data);

}  // namespace patchmgr
