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

}  // namespace llmgw::net
