#pragma once

// URL helpers for what is shown to people: logs, error messages, /health, CLI output.

#include <string>
#include <string_view>

namespace llmgw::net {

// `text` with the user-info of every URL in it replaced by "***", so that a password (or a token
// used as the user name) in a base URL never reaches a log or an error:
//   "http://user:pw@host:8080/v1"       -> "http://***@host:8080/v1"
//   "openai at https://tok@api.x/v1 (m)" -> "openai at https://***@api.x/v1 (m)"
// Text without "scheme://" comes back unchanged. Works on text that does not parse as a URL.
std::string redact_url(std::string_view text);

}  // namespace llmgw::net
