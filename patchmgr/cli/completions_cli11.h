// The completion description (completions.h) of a CLI11 App, read from the
// App itself: its options with their flags, help and validators, its
// subcommands, its positionals. And the hidden `--completions bash|zsh`
// option that prints the script and exits.
#pragma once

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "patchmgr/cli/completions.h"

namespace stemkit::cli {

namespace detail {

// CLI11 appends each validator's description to the type name: "TEXT:{auto,flash}"
// for IsMember, "ENUM:value in {add->0,none->2} OR {0,2}" for a CheckedTransformer.
// The first {...} lists the accepted words (a mapping's keys before "->").
inline std::vector<std::string> choices_of(const std::string& type_name) {
  std::vector<std::string> out;
  auto open = type_name.find('{'), close = type_name.find('}', open);
  if (open == std::string::npos || close == std::string::npos) return out;
  std::string items = type_name.substr(open + 1, close - open - 1), item;
  for (size_t i = 0; i <= items.size(); ++i) {
    if (i == items.size() || items[i] == ',') {
      if (auto arrow = item.find("->"); arrow != std::string::npos) item.resize(arrow);
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += items[i];
    }
  }
  return out;
}

inline bool is_number_type(const std::string& type) {
  return type == "INT" || type == "UINT" || type == "FLOAT" || type == "NUMBER" || type == "POSITIVE" ||
         type == "NONNEGATIVE";
}

}  // namespace detail

inline CompletionCommand completion_command(const CLI::App& app, const std::string& name) {
  CompletionCommand c;
  c.name = name;
  c.help = app.get_description();
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_group().empty()) continue;  // hidden
    const std::string type_name = opt->get_type_name();
    const std::string type = type_name.substr(0, type_name.find(':'));
    if (!opt->nonpositional()) {
      if (!detail::is_number_type(type)) c.file_arguments = true;
      c.argument_name = opt->get_name();
      continue;
    }
    CompletionOption o;
    for (const auto& s : opt->get_snames()) o.flags.push_back("-" + s);
    for (const auto& l : opt->get_lnames()) o.flags.push_back("--" + l);
    o.help = opt->get_description();
    o.takes_value = opt->get_expected_max() != 0;  // add_flag sets expected(0)
    o.repeatable = opt->get_expected_max() > 1;
    if (o.takes_value) {
      o.choices = detail::choices_of(type_name);
      o.file_value = o.choices.empty() && !detail::is_number_type(type);
    }
    c.options.push_back(std::move(o));
  }
  for (const CLI::App* sub : app.get_subcommands({}))
    c.subcommands.push_back(completion_command(*sub, sub->get_name()));
  return c;
}

// Adds the hidden option `--completions bash|zsh` to `app`: it prints the
// script for the App as it stands when the command line is parsed (every
// option and subcommand added by then) and exits 0, before any other check.
// `extend` may adjust the description first (a file glob for the arguments).
template <class Extend>
void add_completions_option(CLI::App& app, const std::string& program, Extend extend) {
  app.add_option_function<std::string>(
         "--completions",
         [&app, program, extend](const std::string& shell) {
           CompletionCommand c = completion_command(app, program);
           extend(c);
           std::cout << (shell == "zsh" ? zsh_completion(c) : bash_completion(c));
           throw CLI::Success();
         },
         "Print the bash or zsh completion script and exit")
      ->check(CLI::IsMember({"bash", "zsh"}))
      ->trigger_on_parse()
      ->group("");
}

inline void add_completions_option(CLI::App& app, const std::string& program) {
  add_completions_option(app, program, [](CompletionCommand&) {});
}

}  // namespace stemkit::cli
