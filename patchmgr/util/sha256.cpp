#include "patchmgr/util/sha256.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <memory>

#include <fmt/format.h>

#include "patchmgr/util/error.h"

namespace patchmgr {

std::string sha256_hex(std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1) {
    char why[256] = "unknown error";
    if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, why, sizeof why);
    throw Error(ExitCode::failed, fmt::format("internal error: OpenSSL's SHA-256 failed: {}", why));
  }
  std::string hex;
  hex.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace patchmgr
