#pragma once
// The CLI's contexts (docs/architecture.md, "CLI"): ~/.config/elafros/config.yaml (0600), shaped
// like a kubeconfig's, naming for each context a server (unix:///PATH or https://HOST:PORT), its
// CA, a token and a namespace; current-context picks one. Read, written and resolved here.

#include <string>
#include <vector>

#include "cli/api_client.hpp"

namespace elafros::cli {

struct Context {
  std::string name;
  std::string server;   // unix:///run/elafros/elafros.sock or https://HOST:PORT
  std::string ca_data;  // certificate-authority-data: base64 PEM
  std::string ca_file;  // certificate-authority: a path
  std::string token;
  std::string token_file;
  std::string ns;
};

struct CliConfig {
  std::string current;
  std::vector<Context> contexts;

  // A missing file is an empty config; a malformed one throws naming the file.
  static CliConfig load(const std::string& path);
  void save(const std::string& path) const;  // 0600, atomically
  const Context* find(const std::string& name) const;
};

// $XDG_CONFIG_HOME/elafros/config.yaml, else ~/.config/elafros/config.yaml.
std::string default_config_path();

struct Overrides {  // what flags and the environment say; empty: not said
  std::string context, server, socket, token, ca_file, ns;
};

// The endpoint to use: flags and environment over the context over the default socket. ns is
// set to the namespace to use when none was given.
ApiEndpoint resolve_endpoint(const CliConfig& config, const Overrides& o,
                             const std::string& default_socket, std::string& ns);

}  // namespace elafros::cli
