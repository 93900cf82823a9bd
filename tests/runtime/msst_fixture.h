// The MSST configuration the RoFormer tests share: the small stereo
// BS-RoFormer of tests/fixtures/bs_roformer (stereo.json's kwargs, weights in
// stereo.ckpt) with one target (vocals), in chunks of 23 hops.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/models/msst_config.h"

namespace stemkit::test {

inline std::string bs_roformer_fixtures() { return std::string(STEMKIT_FIXTURES) + "/bs_roformer/"; }

inline models::MsstConfig stereo_msst_config() {
  std::ifstream in(bs_roformer_fixtures() + "stereo.json");
  models::MsstConfig config;
  config.path = "stereo.yaml";
  config.model = nlohmann::json::parse(in)["kwargs"];
  config.chunk_size = 2944;
  config.instruments = {"vocals", "other"};
  config.target_instrument = "vocals";
  return config;
}

}  // namespace stemkit::test
