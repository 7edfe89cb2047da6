#pragma once

// GitHub webhook deliveries for `llmgw review-server`: the signature check and the part of a
// `pull_request` event that matters.
//
// GitHub signs each delivery's body with the webhook secret: X-Hub-Signature-256 is
// "sha256=" + hex(HMAC-SHA256(secret, body)). The check recomputes it with OpenSSL and compares
// in constant time (CRYPTO_memcmp), so that the time taken says nothing about how much of a
// forged signature was right. Pure functions; thread-safe.

#include <optional>
#include <string>
#include <string_view>

#include "llmgw/github/client.hpp"

namespace llmgw::review {

// "sha256=<64 lowercase hex digits>" for `body` (what GitHub sends).
std::string webhook_signature(std::string_view secret, std::string_view body);

// True when `header` (X-Hub-Signature-256) is the signature of `body` with `secret`. False for a
// missing, malformed or wrong signature, and always false for an empty secret.
bool verify_webhook_signature(std::string_view secret, std::string_view body,
                              std::optional<std::string_view> header);

// A pull request to review, from a `pull_request` event.
struct PullRequestEvent {
  github::RepoRef repo;
  int number = 0;
  std::string head_sha;
  std::string action;  // "opened", "synchronize", "reopened"
};

// The event when it asks for a review (action opened, synchronize or reopened on an open pull
// request); nullopt for other actions, other events and bodies that do not parse.
std::optional<PullRequestEvent> review_request_from(std::string_view event_name,
                                                    std::string_view body);

}  // namespace llmgw::review
