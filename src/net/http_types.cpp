#include "llmgw/net/http_types.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace llmgw::net {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<std::string_view> find_header(const HttpHeaders& headers, std::string_view name) {
  for (const auto& header : headers) {
    if (iequals(header.name, name)) {
      return std::string_view{header.value};
    }
  }
  return std::nullopt;
}

std::string_view target_path(std::string_view target) noexcept {
  // A plain loop: find_first_of("?#") searched the two-character set once per character of the
  // target, 2 % of the gateway's instructions on short requests (bench/RESULTS.md §12).
  std::size_t end = 0;
  while (end < target.size() && target[end] != '?' && target[end] != '#') {
    ++end;
  }
  return target.substr(0, end);
}

bool peer_closed_or_sent(int native_socket) noexcept {
  char byte = 0;
  const auto peeked = ::recv(native_socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return !(peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

}  // namespace llmgw::net
