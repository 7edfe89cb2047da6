#include "credentials.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>

#include "llmgw/config/client_keys.hpp"
#include "local_endpoints.hpp"
#include "proxy.hpp"

namespace llmgw::server::detail {

namespace http = beast::http;

bool token_matches(std::string_view given, const std::string& expected) {
  return !expected.empty() && given.size() == expected.size() &&
         CRYPTO_memcmp(given.data(), expected.data(), given.size()) == 0;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      !beast::iequals(authorization.substr(0, kBearer.size()), kBearer)) {
    return {};
  }
  return authorization.substr(kBearer.size());
}

bool authorized_by_token(std::string_view authorization, const std::string& token) {
  constexpr std::string_view kBasic = "Basic ";
  if (const auto bearer = bearer_token(authorization); !bearer.empty()) {
    return token_matches(bearer, token);
  }
  if (!authorization.starts_with(kBasic)) {
    return false;
  }
  const std::string_view encoded = authorization.substr(kBasic.size());
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > 4096) {
    return false;
  }
  std::string decoded(encoded.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                     reinterpret_cast<const unsigned char*>(encoded.data()),
                                     static_cast<int>(encoded.size()));
  if (length < 0) {
    return false;
  }
  // EVP_DecodeBlock counts the padding as zero bytes.
  const auto padding = encoded.size() - encoded.find_last_not_of('=') - 1;
  decoded.resize(static_cast<std::size_t>(length) - std::min<std::size_t>(padding, 2));
  const auto colon = decoded.find(':');
  return colon != std::string::npos &&
         token_matches(std::string_view{decoded}.substr(colon + 1), token);
}

namespace {

std::string_view presented_key(const http::fields& request) {
  const std::string_view bearer = bearer_token(request[http::field::authorization]);
  return bearer.empty() ? std::string_view{request["x-api-key"]} : bearer;
}

}  // namespace

bool lacks_client_key(const config::GatewayConfig& config, const http::fields& head,
                      std::string_view path, bool admin_listener) {
  const auto& keys = config.auth.keys;
  return !keys.empty() && !admin_listener && !is_local_path(path) &&
         config::match_client_key(keys, presented_key(head)) == nullptr;
}

std::optional<ClientIdentity> identify_client(const Snapshot& snapshot,
                                              const http::fields& request) {
  const auto& keys = snapshot.config().auth.keys;
  if (keys.empty()) {
    return ClientIdentity{};
  }
  const config::ClientKey* key = config::match_client_key(keys, presented_key(request));
  if (key == nullptr) {
    return std::nullopt;
  }
  const auto index = static_cast<std::size_t>(key - keys.data());
  return ClientIdentity{snapshot.key_slots.at(index), key->name, key->priority};
}

http::response<http::string_body> key_required(const http::fields& request, bool keep_alive) {
  const bool presented = !bearer_token(request[http::field::authorization]).empty() ||
                         request.find("x-api-key") != request.end();
  auto response = json_error(401,
                             presented ? "invalid API key"
                                       : "an API key is required: send Authorization: Bearer "
                                         "<key> (or x-api-key: <key>)",
                             keep_alive);
  response.set(http::field::www_authenticate, "Bearer");
  return response;
}

}  // namespace llmgw::server::detail
