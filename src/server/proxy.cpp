// The proxy path (DESIGN.md §1): route, connect (or reuse), send, relay the response chunk by
// chunk, retry before the first byte, record metrics. Bodies are never read whole into memory:
// each upstream read fills a fixed buffer that is written to the client before the next read.

#include "proxy.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <span>
#include <tuple>

#include "llmgw/server/usage_scanner.hpp"
#include "upstream_request.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
using Side = Watchdog::Side;
constexpr auto kAsTuple = asio::as_tuple(use_awaitable);

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Counts a request against a node while it is in flight (bounded loads read these).
class InFlight {
 public:
  InFlight(SharedState& shared, UpstreamNode& node) : shared_(shared), node_(node) {
    node_.in_flight.fetch_add(1, std::memory_order_relaxed);
    shared_.total_in_flight.fetch_add(1, std::memory_order_relaxed);
    node_.metrics.in_flight->Increment();
  }
  ~InFlight() {
    node_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    shared_.total_in_flight.fetch_sub(1, std::memory_order_relaxed);
    node_.metrics.in_flight->Decrement();
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  SharedState& shared_;
  UpstreamNode& node_;
};

enum class AttemptFailure { none, connect, timeout, status_5xx, stale };

asio::awaitable<std::optional<tcp::socket>> connect_upstream(Worker& worker,
                                                             const UpstreamNode& node) {
  const auto& timeouts = worker.shared.config.timeouts;
  tcp::resolver resolver(worker.io);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(node.config.host, std::to_string(node.config.port), kAsTuple);
  if (resolve_error) {
    co_return std::nullopt;
  }
  beast::tcp_stream stream(worker.io);
  stream.expires_after(timeouts.connect);
  auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, kAsTuple);
  if (connect_error) {
    co_return std::nullopt;
  }
  beast::error_code ignored;  // the throwing overload would throw on the data path
  stream.socket().set_option(tcp::no_delay(true), ignored);
  stream.socket().non_blocking(true, ignored);  // for write_now
  // From here on the client connection's watchdog keeps the time (watchdog.hpp).
  co_return std::optional<tcp::socket>{stream.release_socket()};
}

// The status line + headers the client gets, derived from the node's response head. The body is
// a window on the relay buffer, filled per read (Beast's relay example).
http::response<http::buffer_body> client_head(
    const http::response_parser<http::buffer_body>& parser, const UpstreamNode& node,
    routing::RouteKind route, bool head_request, bool keep_alive) {
  const auto& upstream = parser.get();
  http::response<http::buffer_body> head;
  head.version(11);
  head.result(upstream.result_int());
  for (const auto& field : upstream) {
    if (!is_hop_by_hop(field.name_string())) {
      head.insert(field.name_string(), field.value());
    }
  }
  head.set("X-Gateway-Node", node.id);
  head.set("X-Gateway-Route", routing::to_string(route));
  const int status = upstream.result_int();
  const bool may_have_body = !head_request && status >= 200 && status != 204 && status != 304;
  if (may_have_body && !parser.content_length()) {
    head.chunked(true);  // upstream chunked or close-delimited: relay as chunks
  }
  head.keep_alive(keep_alive);
  return head;
}

// Writes what the serializer holds (only its head when `head_only`) at once if the socket takes
// it, which a short message always does: no asynchronous operation then, so no completion handler
// is queued and the worker does not run one more epoll_wait just to dispatch it (strace: two of
// the four epoll_wait calls per short request). What does not fit goes out asynchronously; a
// socket not in non-blocking mode goes the asynchronous way from the start. need_buffer (a
// buffer_body piece went out and the body goes on) is success.
template <bool kIsRequest, class Body>
asio::awaitable<beast::error_code> write_now(tcp::socket& socket,
                                             http::serializer<kIsRequest, Body>& serializer,
                                             bool head_only) {
  beast::error_code ec = asio::error::would_block;
  if (socket.non_blocking()) {
    if (head_only) {
      http::write_header(socket, serializer, ec);
    } else {
      http::write(socket, serializer, ec);
    }
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    if (head_only) {
      std::tie(ec, std::ignore) = co_await http::async_write_header(socket, serializer, kAsTuple);
    } else {
      std::tie(ec, std::ignore) = co_await http::async_write(socket, serializer, kAsTuple);
    }
  }
  if (ec == http::error::need_buffer) {
    ec = {};
  }
  co_return ec;
}

// Parses the body bytes already in `input` (they came with the head) into `out`, without I/O.
// Returns how many body bytes `out` received; sets `broken` on a malformed body.
std::size_t parse_buffered(http::response_parser<http::buffer_body>& parser,
                           beast::flat_buffer& input, std::span<char> out, bool& broken) {
  parser.get().body().data = out.data();
  parser.get().body().size = out.size();
  while (input.size() > 0 && !parser.is_done() && parser.get().body().size > 0) {
    beast::error_code ec;
    const std::size_t used = parser.put(input.data(), ec);
    input.consume(used);
    if (ec == http::error::need_more || ec == http::error::need_buffer) {
      break;
    }
    if (ec) {
      broken = true;
      break;
    }
    if (used == 0) {
      break;
    }
  }
  return out.size() - parser.get().body().size;
}

// An error record in the stream's own format, for a stream that breaks after its first byte.
std::string stream_error_record(std::string_view content_type, const std::string& message) {
  const nlohmann::json error{{"error", message}};
  if (content_type.find("text/event-stream") != std::string_view::npos) {
    const nlohmann::json openai{{"error", {{"message", message}, {"type", "upstream_error"}}}};
    return "data: " + openai.dump() + "\n\n";
  }
  return error.dump() + "\n";
}

}  // namespace

http::response<http::string_body> json_error(int status, const std::string& message,
                                             bool keep_alive) {
  http::response<http::string_body> response;
  response.version(11);
  response.result(static_cast<unsigned>(status));
  response.set(http::field::content_type, "application/json");
  response.set(http::field::server, "llmgw");
  response.body() = nlohmann::json{{"error", message}}.dump() + "\n";
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

asio::awaitable<ProxyResult> proxy_request(Worker& worker, ClientConnection& connection,
                                           Request& request, const std::string& client_ip,
                                           Clock::time_point started) {
  SharedState& shared = worker.shared;
  const auto& config = shared.config;
  tcp::socket& client = *connection.client;
  Watchdog& watchdog = *connection.watchdog;
  ProxyResult result;
  const bool client_keep_alive = request.keep_alive();
  const bool head_request = request.method() == http::verb::head;

  const std::shared_ptr<const Snapshot> snapshot_ref = worker.snapshot();
  const Snapshot& snapshot = *snapshot_ref;
  const std::string key = session_key(request, config.routing.session_header);
  const routing::RoutePlan plan =
      key.empty()
          ? routing::plan_round_robin(
                snapshot.table, shared.round_robin_ticket.fetch_add(1, std::memory_order_relaxed),
                shared.policy)
      : shared.sessions
          ? shared.sessions->plan(snapshot.table, routing::ring_position(key),
                                  shared.total_in_flight.load(std::memory_order_relaxed),
                                  shared.policy, started)
          : routing::plan_keyed(snapshot.table, routing::ring_position(key),
                                shared.total_in_flight.load(std::memory_order_relaxed),
                                shared.policy);
  if (plan.empty()) {
    result.status = 502;
    auto response = json_error(502, "no upstream nodes are configured", client_keep_alive);
    auto [ec, n] = co_await http::async_write(client, response, kAsTuple);
    result.reusable = !ec && client_keep_alive;
    co_return result;
  }
  shared.metrics.count_routing_decision(plan.kind);
  prepare_upstream_request(request, client_ip);

  // The relay buffers go back to the worker on every way out of this coroutine.
  struct Lease {
    RelayBufferPool& pool;
    std::unique_ptr<RelayBuffers> buffers;
    ~Lease() { pool.put(std::move(buffers)); }
  } lease{worker.relay_buffers, worker.relay_buffers.take()};
  RelayBuffers* const buffers = lease.buffers.get();

  bool any_timeout = false;
  std::string last_failure = "no node could be reached";
  for (std::size_t attempt = 0; attempt < plan.count; ++attempt) {
    UpstreamNode& node = snapshot.node(plan.candidates[attempt]);
    const routing::RouteKind route = attempt == 0 ? plan.kind : routing::RouteKind::failover;
    InFlight in_flight(shared, node);
    node.requests.fetch_add(1, std::memory_order_relaxed);
    request.set(http::field::host, node.authority);

    // A pooled connection may have been closed by the node since; one fresh retry on the same
    // node does not count against it.
    std::optional<tcp::socket> upstream;
    beast::flat_buffer& upstream_buffer = buffers->upstream_input;
    std::optional<http::response_parser<http::buffer_body>> parser_slot;
    AttemptFailure failure = AttemptFailure::none;
    for (int connect_try = 0; connect_try < 2; ++connect_try) {
      bool pooled = false;
      upstream.reset();
      watchdog.disarm();  // connect has its own timeout
      if (auto idle = worker.pool.take(node.authority)) {
        pooled = true;
        upstream.emplace(std::move(*idle));
      } else if (auto fresh = co_await connect_upstream(worker, node)) {
        upstream.emplace(std::move(*fresh));
      } else {
        failure = AttemptFailure::connect;
        break;
      }
      connection.upstream = &*upstream;
      watchdog.arm(Side::upstream, config.timeouts.connect + config.timeouts.idle);
      http::request_serializer<http::string_body> request_serializer{request};
      const auto write_error = co_await write_now(*upstream, request_serializer, false);
      if (!write_error) {
        upstream_buffer.clear();
        auto& fresh = parser_slot.emplace();
        fresh.body_limit(std::numeric_limits<std::uint64_t>::max());
        fresh.skip(head_request);
        watchdog.arm(Side::upstream, config.timeouts.first_byte);
        auto [read_error, read] =
            co_await http::async_read_header(*upstream, upstream_buffer, fresh, kAsTuple);
        if (!read_error) {
          failure = AttemptFailure::none;
          break;
        }
        if (watchdog.expired()) {
          failure = AttemptFailure::timeout;
          break;
        }
      } else if (watchdog.expired()) {
        failure = AttemptFailure::timeout;
        break;
      }
      connection.upstream = nullptr;
      upstream.reset();
      failure = pooled ? AttemptFailure::stale : AttemptFailure::connect;
      if (!pooled) {
        break;
      }
    }

    if (failure == AttemptFailure::none && parser_slot->get().result_int() >= 500 &&
        attempt + 1 < plan.count) {
      failure = AttemptFailure::status_5xx;
      last_failure =
          "node " + node.id + " answered " + std::to_string(parser_slot->get().result_int());
    }
    if (failure != AttemptFailure::none) {
      connection.upstream = nullptr;
      upstream.reset();
      const auto kind = failure == AttemptFailure::timeout      ? metrics::UpstreamError::timeout
                        : failure == AttemptFailure::status_5xx ? metrics::UpstreamError::status_5xx
                                                                : metrics::UpstreamError::connect;
      node.metrics.errors[static_cast<std::size_t>(kind)]->Increment();
      if (failure == AttemptFailure::timeout) {
        any_timeout = true;
        last_failure = "node " + node.id + " did not answer within " +
                       std::to_string(config.timeouts.first_byte.count()) + " ms";
      } else if (failure != AttemptFailure::status_5xx) {
        last_failure = "could not connect to node " + node.id + " (" + node.authority + ")";
      }
      if (node.record_failure(config.health.unhealthy_threshold)) {
        node.metrics.healthy->Set(0);
      }
      continue;
    }

    // The node answered: relay the head, then the body as it arrives.
    auto& parser = *parser_slot;
    if (parser.get().result_int() < 500 && node.record_success(config.health.healthy_threshold)) {
      node.metrics.healthy->Set(1);
    }
    const bool keep_alive = client_keep_alive && !shared.draining.load(std::memory_order_relaxed);
    auto head = client_head(parser, node, route, head_request, keep_alive);
    const bool chunked = head.chunked();
    const std::string_view content_type = parser.get()[http::field::content_type];
    result.status = parser.get().result_int();
    result.node = node.id;
    result.route = routing::to_string(route);

    UsageScanner usage;
    auto& buffer = buffers->body;
    http::response_serializer<http::buffer_body> serializer{head};
    bool upstream_complete = parser.is_done();
    bool stream_broken = false;
    bool client_gone = false;
    bool head_sent = false;
    bool first_byte_seen = false;
    // Body bytes that came with the head go out with it: a short response leaves in one write.
    std::size_t got = 0;
    if (!upstream_complete && upstream_buffer.size() > 0) {
      got = parse_buffered(parser, upstream_buffer, buffer, stream_broken);
      upstream_complete = !stream_broken && parser.is_done();
    }
    for (;;) {
      if (got > 0) {
        if (!first_byte_seen) {
          first_byte_seen = true;
          node.metrics.time_to_first_byte->Observe(seconds_since(started));
        }
        usage.feed(std::string_view{buffer.data(), got});
      }
      // One write per piece: the head goes with the first one, the last chunk with the last one.
      // A stream whose first token is not there yet gets its head at once, alone.
      if (got > 0 || !head_sent || (upstream_complete && chunked)) {
        head.body().data = got > 0 ? buffer.data() : nullptr;
        head.body().size = got;
        head.body().more = !upstream_complete;
        watchdog.arm(Side::client, config.timeouts.idle);
        const auto write_error =
            co_await write_now(client, serializer, got == 0 && !upstream_complete);
        head_sent = true;
        client_gone = static_cast<bool>(write_error);
        if (!client_gone) {
          result.bytes += got;
        }
      }
      if (client_gone || upstream_complete || stream_broken) {
        break;
      }
      parser.get().body().data = buffer.data();
      parser.get().body().size = buffer.size();
      watchdog.arm(Side::upstream, config.timeouts.idle);
      // read_some, not read: read would wait until the buffer is full, holding tokens back.
      auto [read_error, read] =
          co_await http::async_read_some(*upstream, upstream_buffer, parser, kAsTuple);
      got = buffer.size() - parser.get().body().size;
      if (read_error && read_error != http::error::need_buffer) {
        stream_broken = true;  // what was read still goes to the client first
      } else {
        upstream_complete = parser.is_done();
      }
      if (config.timeouts.total.count() > 0 && Clock::now() - started > config.timeouts.total) {
        stream_broken = true;
        upstream_complete = false;
      }
    }
    connection.upstream = nullptr;

    if (client_gone) {
      // Closing the upstream connection cancels the generation on the node (frees its slot).
      node.metrics.errors[static_cast<std::size_t>(metrics::UpstreamError::client_disconnect)]
          ->Increment();
      result.reusable = false;
    } else if (stream_broken) {
      node.metrics.errors[static_cast<std::size_t>(metrics::UpstreamError::broken_stream)]
          ->Increment();
      if (chunked) {
        auto record = stream_error_record(
            content_type, "the upstream node " + node.id + " ended the stream unexpectedly");
        head.body().data = record.data();
        head.body().size = record.size();
        head.body().more = false;  // the record, then the last chunk
        watchdog.arm(Side::client, config.timeouts.idle);
        co_await http::async_write(client, serializer, kAsTuple);
      }
      result.reusable = false;
    } else {
      if (!first_byte_seen) {
        node.metrics.time_to_first_byte->Observe(seconds_since(started));
      }
      result.reusable = keep_alive;
      if (parser.keep_alive() && upstream_complete) {
        worker.pool.put(node.authority, std::move(*upstream),
                        config.limits.max_idle_upstream_per_node);
      }
    }
    usage.finish();
    if (usage.usage().seen) {
      node.metrics.prompt_tokens->Increment(static_cast<double>(usage.usage().prompt_tokens));
      node.metrics.completion_tokens->Increment(
          static_cast<double>(usage.usage().completion_tokens));
      node.metrics.prompt_eval_seconds->Increment(usage.usage().prompt_eval_seconds);
    }
    node.metrics.bytes_relayed->Increment(static_cast<double>(result.bytes));
    node.metrics.request_duration->Observe(seconds_since(started));
    node.metrics
        .requests[static_cast<std::size_t>(route)][metrics::status_class_index(result.status)]
        ->Increment();
    co_return result;
  }

  // No node produced a response head.
  result.status = any_timeout ? 504 : 502;
  shared.metrics.count_unrouted(result.status);
  auto response = json_error(result.status, last_failure, client_keep_alive);
  watchdog.arm(Side::client, config.timeouts.idle);
  auto [ec, n] = co_await http::async_write(client, response, kAsTuple);
  result.reusable = !ec && client_keep_alive;
  co_return result;
}

}  // namespace llmgw::server::detail
