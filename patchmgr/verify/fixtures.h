// Is a component's reference data current? Every NAME.json in its fixture
// directory records the component's block of `patchmgr fingerprint` it was
// made from (tools/fixtures/*.py); compared line by line with the block the
// manifests give now, so a stale file says what changed (pin, patch hashes).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/report/fingerprint_block.h"  // component_block

namespace patchmgr {

// What differs between two blocks, for people: "pin b9ab48cad459 -> c05f497215b4",
// "patch sdpa-attention: sha256 f32400ec5b3e -> 0123456789ab", "patch x: new".
std::vector<std::string> block_differences(const std::string& recorded, const std::string& current);

struct FixtureCheck {
  enum class State { current, stale, missing } state = State::missing;
  std::vector<std::string> files;  // the JSON files that record a fingerprint for the component
  std::string detail;              // stale: which files and what differs; missing: why
};

FixtureCheck check_fixtures(const std::filesystem::path& dir, const std::string& component,
                            const std::string& current_block);

}  // namespace patchmgr
