#pragma once

// Plain value types shared by the HTTP server, the HTTP client and their users. No Beast here.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::net {

struct HttpHeader {
  std::string name;
  std::string value;
};

// Header fields in the order they were received or are to be sent. Names compare
// case-insensitively (RFC 9110 §5.1).
using HttpHeaders = std::vector<HttpHeader>;

// The first value of `name`, case-insensitive; nullopt when absent.
std::optional<std::string_view> find_header(const HttpHeaders& headers, std::string_view name);

// True when a and b are equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b) noexcept;

// The path part of a request target ("/api/chat?x=1" -> "/api/chat").
std::string_view target_path(std::string_view target) noexcept;

// True when the peer of a connected, idle socket has closed it, reset it or sent bytes nobody
// asked for (a non-blocking MSG_PEEK that does not answer "would block"): a kept-alive connection
// not worth reusing. Servers close idle keep-alive connections on their own schedule.
bool peer_closed_or_sent(int native_socket) noexcept;

}  // namespace llmgw::net
