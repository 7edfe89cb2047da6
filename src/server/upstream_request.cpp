#include "upstream_request.hpp"

#include <array>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <vector>

namespace llmgw::server::detail {

namespace http = beast::http;

void prepare_upstream_request(Request& request, const std::string& client_ip) {
  std::vector<std::string> named_by_connection;
  for (const auto& token : http::token_list{request[http::field::connection]}) {
    named_by_connection.emplace_back(token);
  }
  for (const auto& name : named_by_connection) {
    request.erase(name);
  }
  for (auto it = request.begin(); it != request.end();) {
    if (is_hop_by_hop(it->name_string()) || it->name() == http::field::expect) {
      it = request.erase(it);
    } else {
      ++it;
    }
  }
  constexpr std::string_view kForwardedFor = "X-Forwarded-For";
  const std::string_view forwarded = request[kForwardedFor];
  if (forwarded.empty()) {
    request.set(kForwardedFor, client_ip);
  } else {
    request.set(kForwardedFor, std::string{forwarded} + ", " + client_ip);
  }
  request.version(11);
  request.keep_alive(true);
  request.prepare_payload();
}

bool is_hop_by_hop(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 9> kHopByHop{
      "connection", "keep-alive",          "proxy-connection", "proxy-authenticate",
      "te",         "proxy-authorization", "trailer",          "transfer-encoding",
      "upgrade"};
  for (const auto& hop : kHopByHop) {
    if (beast::iequals(name, hop)) {
      return true;
    }
  }
  return false;
}

}  // namespace llmgw::server::detail
