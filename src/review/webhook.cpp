#include "llmgw/review/webhook.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace llmgw::review {
namespace {

constexpr std::string_view kPrefix = "sha256=";

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string webhook_signature(std::string_view secret, std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest,
           &length) == nullptr) {
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
  }
  return std::string{kPrefix} + hex(digest, length);
}

bool verify_webhook_signature(std::string_view secret, std::string_view body,
                              std::optional<std::string_view> header) {
  if (secret.empty() || !header) {
    return false;
  }
  const auto expected = webhook_signature(secret, body);
  // The length is public (always 71); only the content is compared in constant time.
  return header->size() == expected.size() &&
         CRYPTO_memcmp(header->data(), expected.data(), expected.size()) == 0;
}

std::optional<PullRequestEvent> review_request_from(std::string_view event_name,
                                                    std::string_view body) {
  if (event_name != "pull_request") {
    return std::nullopt;
  }
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object()) {
    return std::nullopt;
  }
  const auto string_at = [](const nlohmann::json& object, const char* key) {
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string{};
  };
  PullRequestEvent event;
  event.action = string_at(json, "action");
  if (event.action != "opened" && event.action != "synchronize" && event.action != "reopened") {
    return std::nullopt;
  }
  const auto pr = json.find("pull_request");
  const auto repository = json.find("repository");
  if (pr == json.end() || !pr->is_object() || repository == json.end() ||
      !repository->is_object()) {
    return std::nullopt;
  }
  if (const auto number = pr->find("number"); number != pr->end() && number->is_number_integer()) {
    const auto value = number->get<std::int64_t>();
    event.number = value > 0 && value < (1LL << 31) ? static_cast<int>(value) : 0;
  }
  if (const auto head = pr->find("head"); head != pr->end() && head->is_object()) {
    event.head_sha = string_at(*head, "sha");
  }
  const auto repo = github::parse_repo(string_at(*repository, "full_name"));
  if (!repo || event.number == 0 || string_at(*pr, "state") == "closed") {
    return std::nullopt;
  }
  event.repo = *repo;
  return event;
}

}  // namespace llmgw::review
