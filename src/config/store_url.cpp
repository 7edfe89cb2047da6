// routing.placement_store: the Redis URL (redis://[[user]:password@]host[:port][/database]) and
// its checks. Messages never hold the password: they show the URL through net::redact_url.

#include <boost/url/parse.hpp>

#include "gateway_config_internal.hpp"
#include "llmgw/config/gateway_config.hpp"
#include "llmgw/net/url.hpp"

namespace llmgw::config {
namespace {

template <typename View>
std::string_view as_std(const View& view) {
  return std::string_view{view.data(), view.size()};
}

}  // namespace

std::optional<StoreAddress> parse_store_url(std::string_view url, std::string& problem) {
  const std::string shown = detail::quote_value(net::redact_url(url));
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    problem = "not a valid URL " + shown + "; expected redis://[[user]:password@]host[:port][/db]";
    return std::nullopt;
  }
  const auto& view = *parsed;
  const std::string scheme = detail::lower(as_std(view.scheme()));
  if (scheme == "rediss") {
    problem =
        "rediss:// (TLS) is not supported: Debian 12's hiredis (0.14) has no TLS; use redis:// "
        "on a trusted network or through a TLS tunnel (stunnel, spiped)";
    return std::nullopt;
  }
  if (scheme != "redis") {
    problem = "the scheme must be redis, got " + detail::quote_value(scheme);
    return std::nullopt;
  }
  if (!view.has_authority() || view.encoded_host().empty()) {
    problem = "a host is required in " + shown;
    return std::nullopt;
  }
  if (view.has_query() || view.has_fragment()) {
    problem = "a placement store URL has no query or fragment: " + shown;
    return std::nullopt;
  }
  StoreAddress address;
  if (const auto port_text = as_std(view.port()); view.has_port() && !port_text.empty()) {
    const auto port = detail::parse_number<std::uint32_t>(port_text);
    if (!port || *port == 0 || *port > 65535) {
      problem = "port " + std::string{port_text} + " is out of range (1-65535)";
      return std::nullopt;
    }
    address.port = static_cast<std::uint16_t>(*port);
  }
  std::string_view path = as_std(view.encoded_path());
  if (path.starts_with('/')) {
    path.remove_prefix(1);
  }
  if (!path.empty()) {
    const auto database = detail::parse_number<unsigned>(path);
    if (!database || *database > 1'000'000) {
      problem = "the path must be a database number (/0, /1, ...), got " +
                detail::quote_value(std::string{"/"} + std::string{path});
      return std::nullopt;
    }
    address.database = *database;
  }
  const auto host = view.host_address();
  address.host = std::string{host.data(), host.size()};
  if (address.host.starts_with('[') && address.host.ends_with(']')) {
    address.host = address.host.substr(1, address.host.size() - 2);  // hiredis wants no brackets
  }
  if (view.has_userinfo()) {
    address.user = view.user();
    address.password = view.password();
  }
  return address;
}

}  // namespace llmgw::config

namespace llmgw::config::detail {

// The placement store's keys together (validate_into).
void validate_placement_store(const GatewayConfig& config, Problems& problems) {
  const auto& routing = config.routing;
  if (routing.placement_store.empty()) {
    return;
  }
  std::string problem;
  const auto address = parse_store_url(routing.placement_store, problem);
  if (!address) {
    problems.add("routing.placement_store", problem);
    return;
  }
  if (routing.balance_by != "sessions" || routing.balance_factor == 0) {
    problems.add("routing.placement_store",
                 "needs routing.balance_by: sessions and a balance_factor > 0 (the plain ring "
                 "and balance_by: requests keep no placements to share)");
  }
  if (!address->password.empty() && !routing.placement_store_password.empty()) {
    problems.add("routing.placement_store",
                 "the URL holds a password and routing.placement_store_password (or its file) "
                 "is set too; use only one");
  }
}

}  // namespace llmgw::config::detail
