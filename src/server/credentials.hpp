#pragma once

// Internal: the credentials the gateway checks. The admin token (/admin/*, and /status with
// status.require_token) and inbound client keys (auth.keys_file, for every proxied and fleet
// request). Comparisons take constant time; nothing here logs or returns a secret.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "gateway_state.hpp"

namespace llmgw::server::detail {

// `given` is the token `expected` (non-empty), compared in constant time.
bool token_matches(std::string_view given, const std::string& expected);

// `Authorization: Bearer <token>`, or `Basic` with any user name and the token as password (what
// a browser's login prompt sends).
bool authorized_by_token(std::string_view authorization, const std::string& token);

// The token of `Authorization: Bearer <token>` (scheme case-insensitive), "" for anything else.
std::string_view bearer_token(std::string_view authorization);

// Whose request this is, with auth.keys_file: the matched key's index in config().auth.keys.
struct ClientIdentity {
  std::size_t key_slot = metrics::kNoKeySlot;  // the `key` label
  std::string name;                            // the key's name; "" without keys
  std::string priority;                        // the key's class ("" = none given)
};

// The client key a request presents (`Authorization: Bearer <key>`, else `x-api-key: <key>`),
// checked against the snapshot's keys. Always an identity when no keys are configured; nullopt
// when keys are and the request has none of them (401).
std::optional<ClientIdentity> identify_client(const Snapshot& snapshot,
                                              const beast::http::fields& request);

// Whether a request is refused for its key on its head alone: keys are configured, the path is
// not one of the gateway's own (nor on the admin listener, where other paths are a 404) and the
// head presents none of the keys. Its body is then never read (request_reader.hpp).
bool lacks_client_key(const config::GatewayConfig& config, const beast::http::fields& head,
                      std::string_view path, bool admin_listener);

// The 401 for a request without a valid key: JSON error, `WWW-Authenticate: Bearer`.
beast::http::response<beast::http::string_body> key_required(const beast::http::fields& request,
                                                             bool keep_alive);

}  // namespace llmgw::server::detail
