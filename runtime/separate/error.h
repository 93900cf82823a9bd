// The one error type of the separate runner's building blocks (catalog, cache,
// download, naming). `what()` is the whole user-facing text: what went wrong,
// which file or URL, and what to do about it; the runner prints it as it is.
#pragma once

#include <stdexcept>
#include <string>

namespace stemkit::separate {

class SeparateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stemkit::separate
