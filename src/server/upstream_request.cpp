#include "upstream_request.hpp"

#include <array>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <charconv>

#include "head_writer.hpp"

namespace llmgw::server::detail {

namespace http = beast::http;

namespace {

// Fields the node gets from the gateway, not from the client.
bool replaced_for_node(std::string_view name) noexcept {
  return beast::iequals(name, "host") || beast::iequals(name, "content-length") ||
         beast::iequals(name, "expect");
}

}  // namespace

std::string UpstreamRequest::head(std::string_view host) const {
  const Request& request = request_;
  std::string out;
  out.reserve(256 + request.target().size() + host.size());
  out.append(request.method_string());
  out.push_back(' ');
  out.append(request.target());
  out.append(" HTTP/1.1\r\n");
  append_field(out, "Host", host);
  const std::string_view connection = request[http::field::connection];
  const auto named_by_connection = [&](std::string_view name) {
    if (connection.empty()) {
      return false;
    }
    for (const auto& token : http::token_list{connection}) {
      if (beast::iequals(token, name)) {
        return true;
      }
    }
    return false;
  };
  std::string forwarded;  // every X-Forwarded-For the client sent, in order, then its address
  for (const auto& field : request) {
    const std::string_view name = field.name_string();
    if (beast::iequals(name, "x-forwarded-for")) {
      forwarded.append(field.value()).append(", ");
    } else if (!is_hop_by_hop(name) && !replaced_for_node(name) && !named_by_connection(name)) {
      append_field(out, name, field.value());
    }
  }
  forwarded.append(client_ip_);
  append_field(out, "X-Forwarded-For", forwarded);
  const std::size_t size = request.body().size();
  const auto method = request.method();
  if (size > 0 || method == http::verb::post || method == http::verb::put ||
      method == http::verb::options) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, size);
    (void)ec;  // 24 digits hold any size_t
    append_field(out, "Content-Length", {digits, static_cast<std::size_t>(end - digits)});
  }
  end_head(out);
  return out;
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
