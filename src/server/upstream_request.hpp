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

// The request as sent upstream: hop-by-hop headers removed (and those named by Connection),
// X-Forwarded-For appended, HTTP/1.1 keep-alive, Content-Length from the body. The caller sets
// Host per node.
void prepare_upstream_request(Request& request, const std::string& client_ip);

// True for headers that describe one connection, not the message (RFC 9110 §7.6.1).
bool is_hop_by_hop(std::string_view name) noexcept;

}  // namespace llmgw::server::detail
