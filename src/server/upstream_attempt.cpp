#include "upstream_attempt.hpp"

#include <prometheus/counter.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <limits>
#include <span>
#include <string>

#include "gather_write.hpp"
#include "head_writer.hpp"
#include "open_files.hpp"
#include "server/as_tuple.hpp"
#include "upstream_request.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using Clock = std::chrono::steady_clock;
using Side = Watchdog::Side;

}  // namespace

asio::awaitable<ResolvedNode> resolve_node(const UpstreamNode& node) {
  tcp::resolver resolver(co_await asio::this_coro::executor);
  auto [error, endpoints] =
      co_await resolver.async_resolve(node.config.host, std::to_string(node.config.port), kAsTuple);
  ResolvedNode resolved{std::move(endpoints), error, {}};
  if (error) {
    resolved.failure = "cannot resolve " + node.config.host + ": " + error.message();
  }
  co_return resolved;
}

TimedStream node_stream(const UpstreamNode& node, const asio::any_io_executor& executor) {
  if (auto context = node.tls_context.load(std::memory_order_acquire); node.config.tls && context) {
    return TimedStream{beast::tcp_stream{executor}, std::move(context)};
  }
  return TimedStream{beast::tcp_stream{executor}};
}

asio::awaitable<std::string> handshake_with_node(const UpstreamNode& node, TimedStream& stream) {
  if (!node.config.tls) {
    co_return std::string{};
  }
  if (!stream.is_tls()) {
    co_return "no TLS context for https node " + node.id;
  }
  if (!stream.prepare_client(node.config.host, true)) {
    co_return "TLS setup failed for host " + node.config.host;
  }
  auto [ec] = co_await stream.tls().async_handshake(ssl::stream_base::client, kAsTuple);
  if (!ec) {
    co_return std::string{};
  }
  co_return "TLS handshake with " + node.authority + " failed: " +
      (ec == beast::error::timeout ? std::string{"no answer in time"}
                                   : describe_handshake_failure(stream.tls(), ec));
}

namespace {

struct Connected {
  std::optional<tcp::socket> socket;
  beast::error_code error;
  bool timed_out = false;
};

// The TLS handshake with an https:// node on a connected socket, within `timeout` (the
// watchdog's upstream side closes the socket past it). Empty on success, else what failed.
asio::awaitable<std::string> handshake_upstream(ClientConnection& connection,
                                                const UpstreamNode& node, Stream& stream,
                                                std::chrono::milliseconds timeout) {
  if (!stream.prepare_client(node.config.host, true)) {
    co_return "TLS setup failed for host " + node.config.host;
  }
  connection.upstream = &stream;
  connection.watchdog->arm(Watchdog::Side::upstream, timeout);
  auto [ec] = co_await stream.tls().async_handshake(ssl::stream_base::client, kAsTuple);
  connection.watchdog->disarm();
  connection.upstream = nullptr;
  if (!ec) {
    co_return std::string{};
  }
  co_return "TLS handshake with " + node.authority + " failed: " +
      (connection.watchdog->expired() ? std::string{"no answer in time"}
                                      : describe_handshake_failure(stream.tls(), ec));
}

asio::awaitable<Connected> connect_upstream(Worker& worker, const UpstreamNode& node,
                                            std::chrono::milliseconds timeout) {
  Connected result;
  const ResolvedNode resolved = co_await resolve_node(node);
  if (resolved.error) {
    result.error = resolved.error;
    co_return result;
  }
  beast::tcp_stream stream(worker.io);
  stream.expires_after(timeout);
  auto [connect_error, endpoint] = co_await stream.async_connect(resolved.endpoints, kAsTuple);
  if (connect_error) {
    result.error = connect_error;
    result.timed_out = connect_error == beast::error::timeout;
    co_return result;
  }
  beast::error_code ignored;  // the throwing overload would throw on the data path
  stream.socket().set_option(tcp::no_delay(true), ignored);
  stream.socket().non_blocking(true, ignored);  // for write_at_once
  // From here on the client connection's watchdog keeps the time (watchdog.hpp).
  result.socket.emplace(stream.release_socket());
  co_return result;
}

// The connection of one try: a live pooled one on the first try when there is one, else new.
struct Connection {
  AttemptOutcome failure = AttemptOutcome::answered;  // answered = connected
  bool pooled = false;
};

asio::awaitable<Connection> open_connection(Worker& worker, ClientConnection& connection,
                                            UpstreamNode& node,
                                            const config::TimeoutsConfig& timeouts, bool may_reuse,
                                            Clock::time_point deadline, Exchange& out) {
  const auto now = Clock::now();
  if (may_reuse) {
    if (auto idle = worker.pool.take(node.pool_key, timeouts.upstream_idle, now)) {
      out.upstream.emplace(std::move(*idle));
      co_return Connection{AttemptOutcome::answered, true};
    }
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  connection.watchdog->disarm();  // connect keeps its own time
  auto connected = co_await connect_upstream(worker, node, std::min(timeouts.connect, left));
  if (!connected.socket) {
    if (is_local_resource_error(connected.error)) {
      co_return Connection{AttemptOutcome::no_descriptors, false};
    }
    co_return Connection{connected.timed_out && left < timeouts.connect
                             ? AttemptOutcome::timed_out
                             : AttemptOutcome::connect_failed,
                         false};
  }
  if (!node.config.tls) {
    out.upstream.emplace(std::move(*connected.socket));
    co_return Connection{AttemptOutcome::answered, false};
  }
  auto context = node.tls_context.load(std::memory_order_acquire);
  if (!context) {
    out.failure = "no TLS context for https node " + node.id;
    co_return Connection{AttemptOutcome::connect_failed, false};
  }
  out.upstream.emplace(std::move(*connected.socket), std::move(context));
  const auto handshake_time = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::min(deadline - Clock::now(), Clock::duration{timeouts.connect}));
  out.failure = co_await handshake_upstream(connection, node, *out.upstream,
                                            std::max(handshake_time, std::chrono::milliseconds{1}));
  if (!out.failure.empty()) {
    out.upstream.reset();
    co_return Connection{AttemptOutcome::connect_failed, false};
  }
  co_return Connection{AttemptOutcome::answered, false};
}

}  // namespace

std::string_view to_string(AttemptOutcome outcome) noexcept {
  switch (outcome) {
    case AttemptOutcome::answered:
      return "answered";
    case AttemptOutcome::connect_failed:
      return "connect_failed";
    case AttemptOutcome::timed_out:
      return "timed_out";
    case AttemptOutcome::reset:
      return "reset";
    case AttemptOutcome::client_gone:
      return "client_gone";
    case AttemptOutcome::no_descriptors:
      return "no_descriptors";
    case AttemptOutcome::shutting_down:
      return "shutting_down";
  }
  return "unknown";
}

asio::awaitable<AttemptOutcome> attempt(Worker& worker, ClientConnection& connection,
                                        UpstreamNode& node, const UpstreamRequest& request,
                                        bool head_request, const config::TimeoutsConfig& timeouts,
                                        std::chrono::milliseconds time_left,
                                        beast::flat_buffer& input, Exchange& out) {
  Watchdog& watchdog = *connection.watchdog;
  const auto deadline = Clock::now() + time_left;
  watchdog.watch_client();
  struct Unwatch {
    Watchdog& watchdog;
    ~Unwatch() { watchdog.unwatch_client(); }
  } unwatch{watchdog};

  for (int try_number = 0; try_number < 2; ++try_number) {
    out.upstream.reset();
    out.parser.reset();
    const auto opened = co_await open_connection(worker, connection, node, timeouts,
                                                 try_number == 0, deadline, out);
    if (watchdog.client_gone()) {
      out.upstream.reset();
      co_return AttemptOutcome::client_gone;
    }
    if (opened.failure != AttemptOutcome::answered) {
      co_return opened.failure;
    }
    connection.upstream = &*out.upstream;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    watchdog.arm(Side::upstream, std::max(left, std::chrono::milliseconds{1}));
    const std::string head = request.head(node.authority);
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(request.body())};
    std::span<asio::const_buffer> rest{buffers.data(), request.body().empty() ? 1U : 2U};
    beast::error_code failed;
    if (!write_at_once(*out.upstream, rest, failed)) {
      failed = co_await write_rest(*out.upstream, rest);
    }
    auto& parser = out.parser.emplace();
    if (!failed) {
      input.clear();
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      parser.skip(head_request);
      auto [read_error, read] =
          co_await http::async_read_header(*out.upstream, input, parser, kAsTuple);
      failed = read_error;
    }
    if (!failed) {
      co_return AttemptOutcome::answered;
    }
    connection.upstream = nullptr;
    out.upstream.reset();
    if (watchdog.client_gone()) {
      co_return AttemptOutcome::client_gone;
    }
    if (worker.shared.drain_cut.load(std::memory_order_relaxed)) {
      co_return AttemptOutcome::shutting_down;
    }
    if (watchdog.expired()) {
      co_return AttemptOutcome::timed_out;
    }
    if (!opened.pooled || parser.got_some() || input.size() > 0) {
      co_return AttemptOutcome::reset;
    }
    // A pooled connection the node had closed: once more on a brand-new one.
    out.replaced_stale = true;
    node.metrics.errors[static_cast<std::size_t>(metrics::UpstreamError::stale_connection)]
        ->Increment();
  }
  co_return AttemptOutcome::reset;  // not reached: the second try never reuses
}

}  // namespace llmgw::server::detail
