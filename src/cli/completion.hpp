#pragma once
// Shell completion generated from the CLI's own definition, so that it never drifts from it.

#include <string>

namespace CLI {
class App;
}

namespace elafros::cli {

// A bash completion script for `app` (commands, subcommands, flags; service names from the
// daemon where a command takes one).
std::string bash_completion(const CLI::App& app);

}  // namespace elafros::cli
