// `patchmgr status`: what state each checkout is in, as text or JSON.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "patchmgr/checkout/context.h"
#include "patchmgr/checkout/inspect.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

// Inspects the checkout (read-only: no lock, no recovery) with conflict checks.
Inspection inspect_checkout(const Manifest& manifest);

void print_status(const Context& ctx, const Manifest& manifest, const Inspection& in);
nlohmann::json status_json(const Context& ctx, const Manifest& manifest, const Inspection& in);

}  // namespace patchmgr
