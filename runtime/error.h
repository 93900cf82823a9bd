// The runtime's one exception type for errors a user reads: a file that is not
// a checkpoint, a configuration with a bad value, an audio file cut short, a
// model missing from the cache, an option that does not fit the machine.
//
// what() is the whole user-facing message, printed as it is by `separate`
// (`separate: <what()>`): what went wrong, which file, option or place, and
// what to do about it. A caller that adds context catches it and throws a new
// Error with the fuller text; nothing parses the message.
//
//   throw Error("{}: storage {} is missing from the archive", path, key);
//   throw Error("--int24 and --float32 exclude each other");  // kept verbatim
//
// A broken promise between parts of the program (a tensor of the wrong rank
// handed to an internal function, a state that cannot happen) is not a user's
// error: it stays a std::logic_error (std::invalid_argument is one), which
// says "a bug" to whoever reads the report.
//
// Kept free of libtorch so the checkpoint readers, audio I/O and the separate
// runner's pieces use it without linking libtorch. Not for .cu files: nvcc and
// hipcc compile those without fmt.
#pragma once

#include <fmt/core.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace stemkit {

class Error : public std::runtime_error {
 public:
  // The message as it is: a lone string, braces included, is never a format
  // string.
  explicit Error(const std::string& message) : std::runtime_error(message) {}

  // fmt::format(format, arg, args...). At least one argument, so that the
  // constructor above alone takes a lone string. The format string is checked
  // against the arguments at compile time (C++20).
  template <class Arg, class... Args>
  Error(fmt::format_string<Arg, Args...> format, Arg&& arg, Args&&... args)
      : std::runtime_error(fmt::format(format, std::forward<Arg>(arg), std::forward<Args>(args)...)) {}
};

}  // namespace stemkit
