// listen.tls, admin.listen.tls and upstream_tls: paths made absolute, files read and checked.

#include "gateway_config_internal.hpp"
#include "llmgw/net/tls_context.hpp"

namespace llmgw::config::detail {
namespace {

void resolve(std::string& file, const std::string& key, const std::filesystem::path& base_dir,
             const Problems& problems) {
  // A file named by the environment or a flag is relative to the working directory.
  if (file.empty() || base_dir.empty() || !problems.origin_of(key).empty()) {
    return;
  }
  if (const std::filesystem::path path{file}; path.is_relative()) {
    file = (base_dir / path).string();
  }
}

void validate_listener(const ListenTlsConfig& tls, const std::string& path, Problems& problems) {
  if (!tls.enabled()) {
    return;
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    problems.add(path,
                 "cert_file and key_file go together (the listener's certificate and its "
                 "private key)");
    return;
  }
  try {
    net::make_server_tls_context(tls.cert_file, tls.key_file);
  } catch (const net::TlsSetupError& e) {
    problems.add(path + (e.key ? ".key_file" : ".cert_file"), e.what());
  }
}

}  // namespace

void resolve_tls_paths(GatewayConfig& config, const std::filesystem::path& base_dir,
                       const Problems& problems) {
  resolve(config.listen.tls.cert_file, "listen.tls.cert_file", base_dir, problems);
  resolve(config.listen.tls.key_file, "listen.tls.key_file", base_dir, problems);
  resolve(config.admin.listen.tls.cert_file, "admin.listen.tls.cert_file", base_dir, problems);
  resolve(config.admin.listen.tls.key_file, "admin.listen.tls.key_file", base_dir, problems);
  resolve(config.upstream_tls.ca_file, "upstream_tls.ca_file", base_dir, problems);
}

void validate_tls(const GatewayConfig& config, Problems& problems) {
  validate_listener(config.listen.tls, "listen.tls", problems);
  if (config.admin.listen.tls.enabled() && config.admin.listen.address.empty()) {
    problems.add("admin.listen.tls",
                 "needs admin.listen.address (without it the admin API is "
                 "served on listen.*, with listen.tls)");
  } else {
    validate_listener(config.admin.listen.tls, "admin.listen.tls", problems);
  }
  if (!config.upstream_tls.ca_file.empty()) {
    try {
      net::make_client_tls_context(config.upstream_tls.ca_file, true);
    } catch (const net::TlsSetupError& e) {
      problems.add("upstream_tls.ca_file", e.what());
    }
  }
}

}  // namespace llmgw::config::detail
