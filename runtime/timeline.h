// The timeline of one `separate` process: when each phase of the run ended,
// in seconds since main() began. --json writes it as "timeline", and
// tools/gpu/cold-start.sh reads it to show where a cold start's time goes
// (docs/benchmarks.md, "The whole song").
//
// The time before main() (the loader mapping and relocating the shared
// libraries, and their static constructors) is outside the process's view:
// "main_epoch_s" is main()'s start on the wall clock, so a caller that noted
// when it started the process can add that part.
//
//   timeline::start();               // first thing in main()
//   timeline::mark("weights read");  // from any thread
//   summary["timeline"] = timeline::to_json();
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace stemkit::timeline {

// Notes main()'s start. Marks before it are measured from the first mark.
void start();

// The phase that has just ended. Thread-safe. A run of a whole catalog would
// make millions: only the first 256 marks are kept ("dropped" counts the rest).
void mark(const std::string& phase);

// {"main_epoch_s": ..., "marks": [{"phase": ..., "at_s": ..., "thread": ...}], "dropped": N}
// in the order the phases ended. "thread" is 0 for main()'s thread, else a small
// number per other thread (the GPU's start, decoding and encoding run on their own).
nlohmann::json to_json();

}  // namespace stemkit::timeline
