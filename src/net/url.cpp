// URL helpers for what is shown to people (url.hpp).

#include "llmgw/net/url.hpp"

namespace llmgw::net {

std::string redact_url(std::string_view text) {
  // The authority runs from "://" to the first '/', '?', '#' or a character that ends a URL in
  // prose; its user-info is everything up to its last '@' (RFC 3986 §3.2: '@' cannot appear in
  // the host, and a password may contain an unencoded one in sloppy input).
  constexpr std::string_view kAuthorityEnd = "/?# \t\r\n\"'<>()[]{}|\\^`";
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  for (;;) {
    const auto scheme_end = text.find("://", pos);
    if (scheme_end == std::string_view::npos) {
      out.append(text.substr(pos));
      return out;
    }
    const auto authority = scheme_end + 3;
    auto end = text.find_first_of(kAuthorityEnd, authority);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    out.append(text.substr(pos, authority - pos));
    const auto at = text.substr(authority, end - authority).rfind('@');
    if (at == std::string_view::npos) {
      out.append(text.substr(authority, end - authority));
    } else {
      out.append("***");
      out.append(text.substr(authority + at, end - authority - at));
    }
    pos = end;
  }
}

}  // namespace llmgw::net
