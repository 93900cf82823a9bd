#include "patchmgr/checkout/context.h"

#include <cctype>
#include <cstdlib>

namespace patchmgr {

std::string upstream_env_var(const std::string& component) {
  std::string var = "PATCHMGR_UPSTREAM_";
  for (char c : component) var += c == '-' ? '_' : char(std::toupper(static_cast<unsigned char>(c)));
  return var;
}

std::string Context::upstream_url(const Manifest& m) const {
  std::string url = m.url;
  if (auto it = url_overrides.find(m.name); it != url_overrides.end())
    url = it->second;
  else if (const char* env = std::getenv(upstream_env_var(m.name).c_str()); env && *env)
    url = env;
  // Anything without a scheme (and not scp-like user@host:path) is a local path.
  bool has_scheme = url.find("://") != std::string::npos;
  bool scp_like = url.find('@') != std::string::npos && url.find(':') != std::string::npos;
  if (!has_scheme && !scp_like) url = std::filesystem::absolute(url).lexically_normal().string();
  return url;
}

}  // namespace patchmgr
