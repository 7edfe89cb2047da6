#include "upstream_request.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <charconv>

#include "head_writer.hpp"

namespace llmgw::server::detail {

namespace http = beast::http;

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
    const auto code = field.name();
    const std::string_view name = field.name_string();
    if (is_hop_by_hop(code) || code == http::field::host || code == http::field::content_length ||
        code == http::field::expect) {
      continue;  // the node gets its own Host and Content-Length; Expect was answered already
    }
    if (code == http::field::unknown && beast::iequals(name, "x-forwarded-for")) {
      forwarded.append(field.value()).append(", ");
    } else if (!named_by_connection(name)) {
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

bool is_hop_by_hop(http::field name) noexcept {
  switch (name) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    default:
      return false;
  }
}

bool is_hop_by_hop(std::string_view name) noexcept {
  return is_hop_by_hop(http::string_to_field(name));
}

}  // namespace llmgw::server::detail
