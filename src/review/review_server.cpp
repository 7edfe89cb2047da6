#include "llmgw/review/review_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_set>

#include "llmgw/net/http_server.hpp"

namespace llmgw::review {
namespace {

struct Reply {
  int status = 200;
  net::HttpHeaders headers;
  std::string body;
};

Reply json_reply(int status, const nlohmann::json& body) {
  return {status, {{"Content-Type", "application/json"}}, body.dump() + "\n"};
}

// The delivery ids seen lately, oldest forgotten first.
class DeliveryLog {
 public:
  explicit DeliveryLog(std::size_t capacity) : capacity_(std::max<std::size_t>(1, capacity)) {}

  // False when the id was seen already.
  bool remember(const std::string& id) {
    std::lock_guard lock{mutex_};
    if (!ids_.insert(id).second) {
      return false;
    }
    order_.push_back(id);
    if (order_.size() > capacity_) {
      ids_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }
  // A delivery we could not queue may be redelivered and must then be accepted.
  void forget(const std::string& id) {
    std::lock_guard lock{mutex_};
    ids_.erase(id);
    std::erase(order_, id);
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::unordered_set<std::string> ids_;
  std::deque<std::string> order_;
};

}  // namespace

struct ReviewServer::Impl {
  ReviewServerOptions options;
  ReviewQueue queue;
  DeliveryLog deliveries;
  std::unique_ptr<net::HttpServer> server;
  // Deliveries by result, for /metrics.
  std::atomic<std::uint64_t> accepted{0}, duplicate{0}, unsigned_{0}, bad_signature{0}, ignored{0},
      rejected{0};

  Impl(ReviewServerOptions opts, ReviewRunner runner)
      : options(std::move(opts)),
        queue(std::move(runner), options.max_pending, options.workers),
        deliveries(options.remembered_deliveries) {}

  Reply webhook(const net::ServerRequest& request) {
    const auto signature = request.header("x-hub-signature-256");
    if (!signature) {
      ++unsigned_;
      return json_reply(401, {{"error", "missing X-Hub-Signature-256"}});
    }
    if (!verify_webhook_signature(options.secret, request.body, signature)) {
      ++bad_signature;
      spdlog::warn("review-server: a delivery from {} has a bad signature", request.remote_address);
      return json_reply(401, {{"error", "invalid X-Hub-Signature-256"}});
    }
    // Only signed deliveries are remembered: a forger cannot block real ids.
    const std::string delivery{request.header("x-github-delivery").value_or("")};
    if (!delivery.empty() && !deliveries.remember(delivery)) {
      ++duplicate;
      return json_reply(200, {{"status", "duplicate"}});
    }
    const std::string event_name{request.header("x-github-event").value_or("")};
    if (event_name == "ping") {
      return json_reply(200, {{"status", "pong"}});
    }
    auto event = review_request_from(event_name, request.body);
    if (!event) {
      ++ignored;
      return json_reply(200, {{"status", "ignored"}});
    }
    const auto what = event->repo.full_name() + "#" + std::to_string(event->number);
    const auto head = event->head_sha.substr(0, 12);
    switch (queue.submit(std::move(*event))) {
      case ReviewQueue::Admission::queued:
      case ReviewQueue::Admission::superseded:
        ++accepted;
        spdlog::info("review-server: queued {} at {} (delivery {})", what, head, delivery);
        return json_reply(202, {{"status", "queued"}, {"pull_request", what}});
      case ReviewQueue::Admission::full:
      case ReviewQueue::Admission::stopped:
        break;
    }
    ++rejected;
    deliveries.forget(delivery);
    auto reply = json_reply(503, {{"error", "the review queue is full"}});
    reply.headers.push_back({"Retry-After", "60"});
    return reply;
  }

  std::string metrics() const {
    const auto stats = queue.stats();
    std::string out =
        "# HELP llmgw_review_server_deliveries_total Webhook deliveries by result.\n"
        "# TYPE llmgw_review_server_deliveries_total counter\n";
    for (const auto& [result, value] :
         {std::pair{"accepted", accepted.load()}, std::pair{"duplicate", duplicate.load()},
          std::pair{"unsigned", unsigned_.load()}, std::pair{"bad_signature", bad_signature.load()},
          std::pair{"ignored", ignored.load()}, std::pair{"queue_full", rejected.load()}}) {
      out +=
          fmt::format("llmgw_review_server_deliveries_total{{result=\"{}\"}} {}\n", result, value);
    }
    out += fmt::format(
        "# HELP llmgw_review_server_reviews_total Reviews run, by outcome.\n"
        "# TYPE llmgw_review_server_reviews_total counter\n"
        "llmgw_review_server_reviews_total{{outcome=\"completed\"}} {}\n"
        "llmgw_review_server_reviews_total{{outcome=\"failed\"}} {}\n"
        "# HELP llmgw_review_server_superseded_total Queued reviews replaced by a newer head.\n"
        "# TYPE llmgw_review_server_superseded_total counter\n"
        "llmgw_review_server_superseded_total {}\n"
        "# HELP llmgw_review_server_queue_pending Pull requests waiting for a review.\n"
        "# TYPE llmgw_review_server_queue_pending gauge\n"
        "llmgw_review_server_queue_pending {}\n"
        "# HELP llmgw_review_server_reviews_running Reviews running now.\n"
        "# TYPE llmgw_review_server_reviews_running gauge\n"
        "llmgw_review_server_reviews_running {}\n",
        stats.completed, stats.failed, stats.superseded, stats.pending, stats.running);
    return out;
  }

  Reply handle(const net::ServerRequest& request) {
    const auto path = request.path();
    if (path == "/health" && request.method == "GET") {
      const auto stats = queue.stats();
      return json_reply(200,
                        {{"status", "ok"}, {"pending", stats.pending}, {"running", stats.running}});
    }
    if (path == "/metrics" && request.method == "GET") {
      return {200, {{"Content-Type", "text/plain; version=0.0.4"}}, metrics()};
    }
    if (path == "/webhook" || path == "/") {
      if (request.method != "POST") {
        auto reply = json_reply(405, {{"error", "deliveries are POSTed"}});
        reply.headers.push_back({"Allow", "POST"});
        return reply;
      }
      return webhook(request);
    }
    return json_reply(404, {{"error", "not found; webhook deliveries go to POST /webhook"}});
  }
};

ReviewServer::ReviewServer(ReviewServerOptions options, ReviewRunner runner) {
  if (options.secret.empty()) {
    throw std::invalid_argument("the webhook secret is empty: every delivery would be refused");
  }
  impl_ = std::make_unique<Impl>(std::move(options), std::move(runner));
  net::ServerOptions server_options;
  server_options.address = impl_->options.address;
  server_options.port = impl_->options.port;
  server_options.max_body_bytes = 25 * 1024 * 1024;  // GitHub caps payloads at 25 MB
  impl_->server = std::make_unique<net::HttpServer>(
      server_options,
      [impl = impl_.get()](const net::ServerRequest& request,
                           net::ResponseStream& stream) -> boost::asio::awaitable<void> {
        auto reply = impl->handle(request);
        co_await stream.respond(reply.status, std::move(reply.headers), std::move(reply.body));
      });
}

ReviewServer::~ReviewServer() {
  stop();
}

void ReviewServer::start() {
  impl_->server->start();
}

void ReviewServer::stop() {
  impl_->server->stop();
  impl_->queue.stop();
}

void ReviewServer::wait() {
  impl_->server->wait();
}

std::uint16_t ReviewServer::port() const {
  return impl_->server->port();
}

std::string ReviewServer::base_url() const {
  return impl_->server->base_url();
}

ReviewQueue& ReviewServer::queue() {
  return impl_->queue;
}

}  // namespace llmgw::review
