// SHA-256 (FIPS 180-4) of a byte string, as lower-case hex. Used for the
// `sha256` of each patch file; self-contained so patchmgr needs no crypto library.
#pragma once

#include <string>
#include <string_view>

namespace patchmgr {

std::string sha256_hex(std::string_view data);

}  // namespace patchmgr
