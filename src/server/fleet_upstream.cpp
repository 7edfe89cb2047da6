#include "fleet_upstream.hpp"

#include <prometheus/counter.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>
#include <utility>

#include "llmgw/util/log_exception.hpp"
#include "server/as_tuple.hpp"
#include "upstream_attempt.hpp"
#include "upstream_pool.hpp"

namespace llmgw::server::detail {
namespace {

namespace http = beast::http;
using Clock = std::chrono::steady_clock;
constexpr std::size_t kReadBytes = 8 * 1024;

// Keeps a stream in its fan-out's cancel list while it is open.
class Registration {
 public:
  Registration(FleetCancel& cancel, beast::tcp_stream& stream) : cancel_(cancel), stream_(stream) {
    cancel_.add(&stream_);
  }
  ~Registration() { cancel_.remove(&stream_); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  FleetCancel& cancel_;
  beast::tcp_stream& stream_;
};

// The next operation's expiry: `timeout` from now (0 = none), and never past the deadline.
void expire(beast::tcp_stream& stream, std::chrono::milliseconds timeout,
            Clock::time_point deadline) {
  const auto at = timeout.count() > 0 ? std::min(Clock::now() + timeout, deadline) : deadline;
  if (at == Clock::time_point::max()) {
    stream.expires_never();
  } else {
    stream.expires_at(at);
  }
}

// Sets answer.failure for an I/O error of `what` ("connect", "request", ...).
void fail(NodeAnswer& answer, const UpstreamNode& node, std::string_view what,
          const beast::error_code& ec, const FleetCancel& cancel) {
  if (cancel.cancelled()) {
    answer.failure = "cancelled (the client left or the request's time ran out)";
  } else if (ec == beast::error::timeout) {
    answer.timed_out = true;
    answer.failure = "no answer in time (" + std::string{what} + ")";
  } else if (what == "connect") {
    answer.failure = "could not connect to " + node.authority + ": " + ec.message();
  } else {
    answer.failure = std::string{what} + " failed: " + ec.message();
  }
}

// Hands every complete line of `pending` to `sink`, keeping the unfinished rest.
asio::awaitable<bool> flush_records(std::string& pending, const RecordSink& sink) {
  std::size_t start = 0;
  for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n', start)) {
    std::string record = pending.substr(start, end - start);
    start = end + 1;
    if (!record.empty() && record != "\r" && !co_await sink(std::move(record))) {
      co_return false;
    }
  }
  pending.erase(0, start);
  co_return true;
}

// The request a fleet call sends; keep-alive when its connection may go back to a pool.
http::request<http::string_body> node_request(const UpstreamNode& node, http::verb method,
                                              std::string target, std::string body,
                                              const std::string& authorization, bool keep_alive) {
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, node.authority);
  request.set(http::field::user_agent, "llmgw-fleet");
  if (!authorization.empty()) {
    request.set(http::field::authorization, authorization);
  }
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
  }
  request.body() = std::move(body);
  request.keep_alive(keep_alive);
  request.prepare_payload();
  return request;
}

// Whether a fleet call to `node` may take and give back the worker's pooled connections: plain
// nodes only (a pooled TLS connection's engine is bound to the untimed socket the proxy path
// uses; fleet calls to https:// nodes open their own, Connection: close).
bool poolable(const UpstreamNode& node, const FleetCallLimits& limits) {
  return limits.pool != nullptr && !node.config.tls;
}

std::optional<beast::tcp_stream> take_pooled(const UpstreamNode& node,
                                             const FleetCallLimits& limits) {
  if (!poolable(node, limits)) {
    return std::nullopt;
  }
  auto pooled = limits.pool->take(node.pool_key, limits.pool_idle_age, Clock::now());
  if (!pooled) {
    return std::nullopt;
  }
  return beast::tcp_stream(std::move(pooled->socket()));
}

// Resolves the node and connects `stream`; false with answer.failure set when that failed. A
// connection that may be pooled gets the proxy path's socket options (gather_write.hpp:
// write_at_once).
asio::awaitable<bool> connect_fresh(TimedStream& stream, const UpstreamNode& node,
                                    const FleetCallLimits& limits, const FleetCancel& cancel,
                                    NodeAnswer& answer) {
  const ResolvedNode resolved = co_await resolve_node(node);
  if (resolved.error) {
    answer.failure = resolved.failure;
    co_return false;
  }
  if (cancel.cancelled()) {
    fail(answer, node, "connect", asio::error::operation_aborted, cancel);
    co_return false;
  }
  expire(stream.next_layer(), limits.connect, limits.deadline);
  if (auto [ec, endpoint] =
          co_await stream.next_layer().async_connect(resolved.endpoints, kAsTuple);
      ec) {
    fail(answer, node, "connect", ec, cancel);
    co_return false;
  }
  if (auto failure = co_await handshake_with_node(node, stream); !failure.empty()) {
    answer.failure = cancel.cancelled()
                         ? "cancelled (the client left or the request's time ran out)"
                         : std::move(failure);
    co_return false;
  }
  if (poolable(node, limits)) {
    beast::error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    stream.socket().non_blocking(true, ignored);
  }
  co_return true;
}

// Reads the body after the head: to `sink` record by record for a streamed 200, else whole into
// answer.body. True when the whole body was read and handed over.
asio::awaitable<bool> read_body(TimedStream& stream, beast::flat_buffer& input,
                                http::response_parser<http::buffer_body>& parser,
                                const UpstreamNode& node, const FleetCallLimits& limits,
                                const FleetCancel& cancel, const RecordSink& sink,
                                NodeAnswer& answer) {
  const bool streamed = sink && answer.status == 200;
  std::string pending;
  std::array<char, kReadBytes> chunk{};
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    expire(stream.next_layer(), limits.idle, limits.deadline);
    auto [ec, n] = co_await http::async_read_some(stream, input, parser, kAsTuple);
    pending.append(chunk.data(), chunk.size() - parser.get().body().size);
    if (ec && ec != http::error::need_buffer) {
      fail(answer, node, "response body", ec, cancel);
      co_return false;
    }
    if (streamed && !co_await flush_records(pending, sink)) {
      fail(answer, node, "relay", asio::error::operation_aborted, cancel);
      co_return false;
    }
    if (pending.size() > limits.max_body_bytes) {
      answer.failure = "answered more than " + std::to_string(limits.max_body_bytes) +
                       (streamed ? " bytes in one record" : " bytes");
      co_return false;
    }
  }
  if (!streamed) {
    answer.body = std::move(pending);
    co_return true;
  }
  pending.push_back('\n');  // a last record without its newline
  if (!co_await flush_records(pending, sink)) {
    fail(answer, node, "relay", asio::error::operation_aborted, cancel);
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> run_task(std::shared_ptr<FanOut> state, std::size_t index, NodeTask task) {
  RecordSink sink = [state, index](std::string record) -> asio::awaitable<bool> {
    FleetEvent event{index, false, std::move(record), {}};
    auto [ec] = co_await state->channel.async_send({}, std::move(event), kAsTuple);
    co_return !ec && !state->cancel.cancelled();
  };
  FleetEvent done{index, true, {}, {}};
  try {
    done.answer = co_await task(index, sink);
  } catch (const std::exception& e) {
    done.answer.failure = std::string{"internal error: "} + e.what();
  }
  // Always sent: fan_out waits for every task's done event.
  co_await state->channel.async_send({}, std::move(done), kAsTuple);
}

}  // namespace

void FleetCancel::remove(beast::tcp_stream* stream) noexcept {
  std::erase(open_, stream);
}

void FleetCancel::cancel_all() noexcept {
  cancelled_ = true;
  for (auto* stream : open_) {
    beast::error_code ignored;
    stream->socket().close(ignored);
  }
}

std::string NodeAnswer::problem() const {
  if (!failure.empty()) {
    return failure;
  }
  const auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    return parsed["error"].get<std::string>();
  }
  return "answered " + std::to_string(status);
}

asio::awaitable<NodeAnswer> call_node(const UpstreamNode& node, http::verb method,
                                      std::string target, std::string body,
                                      std::string authorization, FleetCallLimits limits,
                                      FleetCancel& cancel, RecordSink sink) {
  NodeAnswer answer;
  answer.node = node.id;
  const auto executor = co_await asio::this_coro::executor;
  auto request = node_request(node, method, std::move(target), std::move(body), authorization,
                              poolable(node, limits));
  for (int try_number = 0; try_number < 2; ++try_number) {
    auto pooled = try_number == 0 ? take_pooled(node, limits) : std::nullopt;
    const bool reused = pooled.has_value();
    // A pooled plain connection, else a new one (TLS for an https:// node).
    TimedStream stream = reused ? TimedStream{std::move(*pooled)} : node_stream(node, executor);
    const Registration registration(cancel, stream.next_layer());
    if (!reused && !co_await connect_fresh(stream, node, limits, cancel, answer)) {
      co_return answer;
    }
    expire(stream.next_layer(), limits.head, limits.deadline);
    auto [write_error, written] = co_await http::async_write(stream, request, kAsTuple);
    beast::flat_buffer input;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // bounded in read_body: per buffered body, per record
    beast::error_code head_error = write_error;
    if (!head_error) {
      std::tie(head_error, std::ignore) =
          co_await http::async_read_header(stream, input, parser, kAsTuple);
    }
    if (head_error && reused && !cancel.cancelled() && !parser.got_some() && input.size() == 0) {
      // A pooled connection the node had closed while it sat idle: once more on a new one.
      node.metrics.errors[static_cast<std::size_t>(metrics::UpstreamError::stale_connection)]
          ->Increment();
      continue;
    }
    if (head_error) {
      fail(answer, node, write_error ? "request" : "response head", head_error, cancel);
      co_return answer;
    }
    answer.status = static_cast<int>(parser.get().result_int());
    const bool complete =
        co_await read_body(stream, input, parser, node, limits, cancel, sink, answer);
    if (complete && poolable(node, limits) && parser.keep_alive() && !cancel.cancelled()) {
      limits.pool->put(node.pool_key, Stream{stream.next_layer().release_socket()},
                       limits.pool_max_idle, Clock::now());
    }
    co_return answer;
  }
  co_return answer;  // not reached: the second try never reuses
}

asio::awaitable<std::vector<NodeAnswer>> fan_out(std::shared_ptr<FanOut> state, std::size_t count,
                                                 NodeTask task, RecordHandler on_record) {
  std::vector<NodeAnswer> answers(count);
  const auto executor = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < count; ++i) {
    asio::co_spawn(executor, run_task(state, i, task), [](const std::exception_ptr& error) {
      util::log_exception("fleet task", error);
    });
  }
  std::size_t done = 0;
  while (done < count) {
    auto [ec, event] = co_await state->channel.async_receive(kAsTuple);
    if (ec) {
      break;  // the channel closed: only when the worker stops
    }
    if (event.done) {
      answers[event.index] = std::move(event.answer);
      ++done;
    } else if (on_record) {
      co_await on_record(event.index, std::move(event.record));
    }
  }
  co_return answers;
}

void watch_client(Stream& client, const std::shared_ptr<FanOut>& state) {
  state->watching = true;
  client.socket().async_wait(tcp::socket::wait_read, [&client, state](const beast::error_code& ec) {
    if (ec || !state->watching) {
      return;  // stopped, or the connection ended
    }
    state->watching = false;
    // Readable: the client closed or sent more (it stays); stream.hpp's peer_has_left.
    if (!peer_has_left(client.socket().native_handle(), client.is_tls())) {
      return;
    }
    state->client_gone = true;
    state->cancel.cancel_all();
  });
}

void stop_watching(Stream& client, FanOut& state) noexcept {
  if (std::exchange(state.watching, false)) {
    beast::error_code ignored;
    client.socket().cancel(ignored);  // only the watch's wait is pending on the client
  }
}

}  // namespace llmgw::server::detail
