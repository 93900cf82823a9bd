// What every checkout operation needs besides its manifest: the project
// root, upstream URL overrides, and where to print.
#pragma once

#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct Context {
  std::filesystem::path root;                        // holds manifests/ and patches/
  std::map<std::string, std::string> url_overrides;  // component name -> URL or local path (--upstream)
  std::ostream* out = &std::cout;                    // results
  std::ostream* err = &std::cerr;                    // warnings and recovery notices

  // The URL to clone or fetch for `m`: --upstream NAME=URL, else the
  // environment variable PATCHMGR_UPSTREAM_<NAME> (upper case, '-' -> '_'),
  // else upstream.url. Local paths are made absolute.
  std::string upstream_url(const Manifest& m) const;
};

// "PATCHMGR_UPSTREAM_BS_ROFORMER" for "bs-roformer".
std::string upstream_env_var(const std::string& component);

}  // namespace patchmgr
