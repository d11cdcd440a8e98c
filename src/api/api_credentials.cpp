#include "api_credentials.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "api/local_ca.hpp"
#include "api/private_file.hpp"

namespace fs = std::filesystem;

namespace elafros {

Result<std::unique_ptr<ApiCredentials>> ApiCredentials::open(
    const std::string& data_dir, const std::string& cert_file, const std::string& key_file,
    const std::vector<std::string>& hosts) {
  auto c = std::make_unique<ApiCredentials>();
  std::error_code ec;
  std::string tls = data_dir + "/tls";
  fs::create_directories(tls, ec);
  ::chmod(tls.c_str(), 0700);
  if (cert_file.empty() != key_file.empty())
    return Error::invalid("--tls-cert and --tls-key go together: give both, or neither");
  if (!cert_file.empty()) {
    c->cert_file_ = cert_file;
    c->key_file_ = key_file;
    c->ca_file_ = cert_file;
  } else {
    c->cert_file_ = tls + "/server.crt";
    c->key_file_ = tls + "/server.key";
    c->ca_file_ = tls + "/ca.crt";
    auto ca = LocalCa::open(tls);
    if (!ca) return ca.error();
    if (!fs::exists(c->cert_file_, ec) || !fs::exists(c->key_file_, ec)) {
      auto server = ca->issue(hosts);
      if (!server) return server.error();
      if (auto r = write_private_file(c->key_file_, server->key); !r) return r.error();
      if (auto r = write_private_file(c->cert_file_, server->cert); !r) return r.error();
    }
  }
  return c;
}

std::string ApiCredentials::ca_pem() const {
  return read_whole_file(ca_file_);
}

}  // namespace elafros
