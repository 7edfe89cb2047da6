#pragma once

// Internal: what the proxy reads from a client's request before routing it, and how it rewrites
// the request for the node. Pure functions over a Beast message, no I/O, so the fuzz target
// (tests/fuzz/request_fuzzer.cpp) drives them without a socket.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

namespace llmgw::server::detail {

namespace beast = boost::beast;
using Request = beast::http::request<beast::http::string_body>;

// The request as a node receives it, rendered from the client's parsed request without changing
// it: the client's method, target and body over HTTP/1.1 keep-alive; its fields but the
// hop-by-hop ones (and those its Connection header names), Expect, Host, Content-Length and
// X-Forwarded-For; then X-Forwarded-For with the client's address appended and Content-Length
// from the body (as Beast's prepare_payload sets it: for a body, or for POST, PUT and OPTIONS).
// Each attempt renders the head for its node (a retry is rare; nothing is kept for the length
// of a stream).
class UpstreamRequest {
 public:
  // `request` and `client_ip` must outlive this.
  UpstreamRequest(const Request& request, std::string_view client_ip) noexcept
      : request_(request), client_ip_(client_ip) {}

  // The whole head for the node at `host` (its authority), the empty line included.
  std::string head(std::string_view host) const;
  const std::string& body() const noexcept { return request_.body(); }

 private:
  const Request& request_;
  std::string_view client_ip_;
};

// True for headers that describe one connection, not the message (RFC 9110 §7.6.1). Every such
// name is one Beast knows, so the field's code (parsed once) decides without comparing strings.
bool is_hop_by_hop(beast::http::field name) noexcept;
bool is_hop_by_hop(std::string_view name) noexcept;

}  // namespace llmgw::server::detail
