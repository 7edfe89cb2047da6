#include "health_checker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "fleet_endpoints.hpp"
#include "server/as_tuple.hpp"
#include "upstream_attempt.hpp"

namespace llmgw::server::detail {
namespace {

namespace http = beast::http;
constexpr std::string_view kVersionPath = "/api/version";

}  // namespace

void HealthChecker::start() {
  asio::co_spawn(control_, loop(), asio::detached);
}

void HealthChecker::wake() {
  asio::post(control_, [this] { timer_.cancel(); });
}

asio::awaitable<NodeGetResult> get_from_node(asio::io_context& io, const UpstreamNode& node,
                                             const std::string& path,
                                             std::chrono::milliseconds timeout,
                                             std::string_view user_agent) {
  // A catalog of thousands of models is a few MiB; anything larger is not a listing.
  constexpr std::uint64_t kMaxBodyBytes = 16 * 1024 * 1024;
  NodeGetResult result;
  const ResolvedNode resolved = co_await resolve_node(node);
  if (resolved.error) {
    result.error = resolved.failure;
    co_return result;
  }
  TimedStream stream = node_stream(node, io.get_executor());  // TLS for an https:// node
  stream.next_layer().expires_after(timeout);
  auto [connect_error, endpoint] =
      co_await stream.next_layer().async_connect(resolved.endpoints, kAsTuple);
  if (!connect_error) {
    if (auto failure = co_await handshake_with_node(node, stream); !failure.empty()) {
      result.error = std::move(failure);
      co_return result;
    }
  }
  http::request<http::empty_body> request{http::verb::get, path, 11};
  request.set(http::field::host, node.authority);
  request.set(http::field::user_agent, user_agent);
  request.keep_alive(false);
  beast::error_code io_error = connect_error;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxBodyBytes);
  if (!io_error) {
    std::tie(io_error, std::ignore) = co_await http::async_write(stream, request, kAsTuple);
  }
  if (!io_error) {
    beast::flat_buffer buffer;
    std::tie(io_error, std::ignore) = co_await http::async_read(stream, buffer, parser, kAsTuple);
  }
  if (io_error) {
    result.error = io_error.message();
  } else {
    result.status = static_cast<int>(parser.get().result_int());
    result.body = std::move(parser.get().body());
  }
  co_return result;
}

asio::awaitable<void> HealthChecker::probe(std::shared_ptr<UpstreamNode> node) {
  const auto snapshot = shared_.current();  // keeps `health` alive across the awaits
  const auto& health = snapshot->config().health;
  const std::string& path = config::health_path_of(node->config, health);
  const NodeGetResult got =
      co_await get_from_node(control_, *node, path, health.timeout, "llmgw-health");
  std::string failure;
  if (got.error.starts_with("cannot resolve")) {
    failure = got.error;
  } else if (!got.error.empty()) {
    failure = "health check of " + path + " failed: " + got.error;
  } else if (got.status < 200 || got.status >= 300) {
    failure = "health check of " + path + " answered " + std::to_string(got.status);
  }
  const auto policy = outlier_policy(health);
  if (failure.empty()) {
    if (path == kVersionPath) {
      remember_version(*node, got.body);  // the fleet's /api/version answers from it
    }
    node->record_success(NodeHealth::Source::check, policy);
  } else {
    node->record_failure(NodeHealth::Source::check, policy, failure);
  }
}

asio::awaitable<void> HealthChecker::loop() {
  while (!stop_requested_.load()) {
    const auto snapshot = shared_.current();
    for (const auto& node : snapshot->nodes) {
      asio::co_spawn(control_, probe(node), asio::detached);
    }
    timer_.expires_after(snapshot->config().health.interval);
    // Cancelled by a reload (operation_aborted): the next round starts at once, with the new
    // nodes and the new interval.
    co_await timer_.async_wait(kAsTuple);
  }
}

}  // namespace llmgw::server::detail
