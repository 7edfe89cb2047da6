#pragma once

// `llmgw review-server`: reviews pull requests as GitHub reports them through a webhook.
//
//   POST /webhook  a GitHub delivery. Without a valid X-Hub-Signature-256 (HMAC-SHA256 of the
//                  body with the webhook secret): 401 and nothing else happens. A delivery id
//                  (X-GitHub-Delivery) seen before: 200 "duplicate" (GitHub redelivers). "ping":
//                  200. A pull_request event opened / synchronize / reopened: queued, 202 (see
//                  review_queue.hpp: one review at a time per PR, newest head wins, bounded;
//                  full: 503 with Retry-After). Anything else: 200 "ignored".
//   GET /health    200 {"status": "ok", "pending": n, "running": n}
//   GET /metrics   Prometheus text: deliveries by result, reviews by outcome, queue depth.
//
// The review itself is the injected runner (review::run_review in production), called on the
// queue's worker threads. Thread-safe.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "llmgw/review/review_queue.hpp"

namespace llmgw::net {
class HttpServer;
}  // namespace llmgw::net

namespace llmgw::review {

struct ReviewServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8090;  // 0: ephemeral
  std::string secret;         // the webhook secret; required
  std::size_t max_pending = 64;
  unsigned workers = 1;
  std::size_t remembered_deliveries = 10'000;  // for de-duplication
};

class ReviewServer {
 public:
  // Throws std::invalid_argument for an empty secret.
  ReviewServer(ReviewServerOptions options, ReviewRunner runner);
  ~ReviewServer();
  ReviewServer(const ReviewServer&) = delete;
  ReviewServer& operator=(const ReviewServer&) = delete;

  void start();  // binds and serves on background threads; throws when it cannot bind
  void stop();   // stops accepting, then lets running reviews finish
  void wait();   // until stop() (from a signal handler thread)
  std::uint16_t port() const;
  std::string base_url() const;
  ReviewQueue& queue();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::review
