// The `make chaos` modes of llmgw_load: requests, slowloris, flood (chaos_modes.hpp). Like the
// other modes: one io_context on one thread, one coroutine per connection.

#include "chaos_modes.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <memory>
#include <string_view>

#include "load_common.hpp"

namespace llmgw::bench::load {

namespace {

namespace http = beast::http;
using nlohmann::json;

constexpr std::size_t kMaxFailureTimes = 2000;
constexpr std::size_t kResponseBodyLimit = 64 * 1024 * 1024;

json generation_body(const RequestsOptions& options) {
  const json messages = json::array({{{"role", "user"}, {"content", "hello"}}});
  if (options.path.rfind("/v1/", 0) == 0) {
    return {{"model", "llama3.2"},
            {"messages", messages},
            {"stream", options.stream},
            {"max_tokens", options.tokens}};
  }
  if (options.path == "/api/generate") {
    return {{"model", "llama3.2"},
            {"prompt", "hello"},
            {"stream", options.stream},
            {"options", {{"num_predict", options.tokens}}}};
  }
  return {{"model", "llama3.2"},
          {"messages", messages},
          {"stream", options.stream},
          {"options", {{"num_predict", options.tokens}}}};
}

enum class BodyEnd { done, error_record, cut };

// How a 200 body ended, read record by record: NDJSON lines, SSE "data: " lines or one JSON body.
// An error record anywhere wins (the gateway ends a broken stream with one); otherwise the body
// must carry the generation's last record ("done": true, "data: [DONE]", a finish_reason).
BodyEnd classify_body(std::string_view body) {
  bool done = false;
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t end = body.find('\n', start);
    if (end == std::string_view::npos) {
      end = body.size();
    }
    std::string_view line = body.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.rfind("data: ", 0) == 0) {
      line.remove_prefix(6);
    }
    if (line == "[DONE]") {
      done = true;
      continue;
    }
    if (line.empty() || line.front() != '{') {
      continue;
    }
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) {
      continue;
    }
    if (record.contains("error")) {
      return BodyEnd::error_record;
    }
    if (record.contains("done") && record["done"] == true) {
      done = true;
    }
    const auto choices = record.find("choices");
    if (choices != record.end() && choices->is_array() && !choices->empty() &&
        choices->front().contains("finish_reason") &&
        !choices->front()["finish_reason"].is_null()) {
      done = true;
    }
  }
  return done ? BodyEnd::done : BodyEnd::cut;
}

struct RequestsTally {
  std::size_t started = 0;  // requests begun, shared by every connection (the --requests bound)
  std::size_t sent = 0;
  std::size_t ok = 0;
  std::size_t transport_errors = 0;  // no response head: connect, write or read failed
  std::size_t error_records = 0;     // 200 whose body ended with an error record
  std::size_t cut = 0;               // 200 whose body ended without its last record
  std::size_t server_closed = 0;     // answers that closed the keep-alive connection
  std::map<std::string, std::size_t> statuses;
  std::map<std::string, std::size_t> routes;
  std::map<std::string, std::size_t> nodes;
  std::vector<double> latencies_us;
  std::vector<double> failure_at_s;  // since the start, for lining failures up with a fault
};

class RequestsConnection {
 public:
  RequestsConnection(const RequestsOptions& options, std::string session, Clock::time_point start,
                     RequestsTally& tally)
      : options_(options),
        origin_(parse_origin(options.url)),
        start_(start),
        tally_(tally),
        request_(http::verb::post, options.path, 11) {
    request_.set(http::field::host, origin_.host + ":" + origin_.port);
    request_.set(http::field::content_type, "application/json");
    if (!session.empty()) {
      request_.set("X-Session-ID", session);
    }
    request_.body() = generation_body(options).dump();
    request_.keep_alive(true);
    request_.prepare_payload();
  }

  asio::awaitable<void> run() {
    asio::steady_timer pause(co_await asio::this_coro::executor);
    while (more()) {
      ++tally_.started;
      co_await one_request();
      if (options_.think_ms > 0.0) {
        pause.expires_after(from_seconds(options_.think_ms / 1000.0));
        co_await pause.async_wait(kAsTuple);
      }
    }
    if (stream_) {
      beast::error_code ignored;
      stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
  }

 private:
  bool more() const {
    const bool count_left = options_.requests == 0 || tally_.started < options_.requests;
    const bool time_left =
        options_.duration_s <= 0.0 || Clock::now() < start_ + from_seconds(options_.duration_s);
    return count_left && time_left;
  }

  void failed() {
    if (tally_.failure_at_s.size() < kMaxFailureTimes) {
      tally_.failure_at_s.push_back(seconds_since(start_));
    }
  }

  void transport_error() {
    ++tally_.transport_errors;
    ++tally_.statuses["none"];
    failed();
    stream_.reset();
  }

  asio::awaitable<void> one_request() {
    ++tally_.sent;
    if (!stream_) {
      // basic_stream can be move-constructed, not move-assigned: emplace.
      auto fresh = co_await connect(origin_);
      buffer_.clear();
      if (!fresh) {
        transport_error();
        co_return;
      }
      stream_.emplace(std::move(*fresh));
    }
    const auto sent_at = Clock::now();
    stream_->expires_after(from_seconds(options_.timeout_s));
    auto [write_ec, written] = co_await http::async_write(*stream_, request_, kAsTuple);
    if (write_ec) {
      transport_error();
      co_return;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kResponseBodyLimit);
    auto [read_ec, read] = co_await http::async_read(*stream_, buffer_, parser, kAsTuple);
    if (read_ec && !parser.is_header_done()) {
      transport_error();
      co_return;
    }
    const auto& response = parser.get();
    const int status = response.result_int();
    ++tally_.statuses[std::to_string(status)];
    if (const auto route = response.find("X-Gateway-Route"); route != response.end()) {
      ++tally_.routes[std::string(route->value())];
    }
    if (const auto node = response.find("X-Gateway-Node"); node != response.end()) {
      ++tally_.nodes[std::string(node->value())];
    }
    const BodyEnd end = read_ec ? BodyEnd::cut : classify_body(response.body());
    if (status == 200 && end == BodyEnd::done) {
      ++tally_.ok;
      tally_.latencies_us.push_back(micros(Clock::now() - sent_at));
    } else {
      failed();
      if (status == 200) {
        ++(end == BodyEnd::error_record ? tally_.error_records : tally_.cut);
      }
    }
    if (read_ec || !response.keep_alive()) {
      ++tally_.server_closed;
      stream_.reset();
    }
  }

  const RequestsOptions& options_;
  Origin origin_;
  Clock::time_point start_;
  RequestsTally& tally_;
  http::request<http::string_body> request_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

// Connects with a 10 s bound and hands back the plain socket (slowloris and flood read and write
// at once, each with its own pace, so a tcp_stream's single deadline does not fit).
asio::awaitable<std::optional<tcp::socket>> connect_socket(const Origin& origin) {
  auto stream = co_await connect(origin);
  if (!stream) {
    co_return std::nullopt;
  }
  stream->expires_never();
  co_return stream->release_socket();
}

// "HTTP/1.1 408 ..." -> "408"; anything else -> "none".
std::string status_of(std::string_view first_bytes) {
  if (first_bytes.rfind("HTTP/1.", 0) == 0 && first_bytes.size() >= 12) {
    return std::string(first_bytes.substr(9, 3));
  }
  return "none";
}

struct SlowlorisTally {
  std::size_t connected = 0;
  std::size_t connect_failed = 0;
  std::size_t closed_by_server = 0;
  std::map<std::string, std::size_t> statuses;
  std::vector<double> closed_after_s;
};

struct SlowConnection {
  explicit SlowConnection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  bool closed = false;     // the reader saw the end (ours or the server's)
  bool we_closed = false;  // the run ended with the connection still open
};

asio::awaitable<void> slow_reader(std::shared_ptr<SlowConnection> connection,
                                  Clock::time_point opened, SlowlorisTally& tally) {
  std::array<char, 512> bytes{};
  auto [ec, n] = co_await connection->socket.async_read_some(asio::buffer(bytes), kAsTuple);
  connection->closed = true;
  if (!connection->we_closed) {
    ++tally.closed_by_server;
    tally.closed_after_s.push_back(seconds_since(opened));
    ++tally.statuses[status_of(std::string_view(bytes.data(), n))];
  }
}

asio::awaitable<void> slow_connection(const SlowlorisOptions& options, const Origin& origin,
                                      Clock::time_point start_at, Clock::time_point until,
                                      SlowlorisTally& tally) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  timer.expires_at(start_at);
  co_await timer.async_wait(kAsTuple);
  auto socket = co_await connect_socket(origin);
  if (!socket) {
    ++tally.connect_failed;
    co_return;
  }
  ++tally.connected;
  auto connection = std::make_shared<SlowConnection>(std::move(*socket));
  asio::co_spawn(executor, slow_reader(connection, Clock::now(), tally), asio::detached);
  const std::string head = "POST /api/chat HTTP/1.1\r\nHost: " + origin.host + "\r\nX-Slow: ";
  for (std::size_t i = 0; !connection->closed && Clock::now() < until; ++i) {
    const char byte = i < head.size() ? head[i] : 'a';
    auto [ec, n] = co_await asio::async_write(connection->socket, asio::buffer(&byte, 1), kAsTuple);
    if (ec) {
      break;  // the reader records the close
    }
    timer.expires_after(from_seconds(options.interval_ms / 1000.0));
    co_await timer.async_wait(kAsTuple);
  }
  if (!connection->closed) {
    connection->we_closed = true;
    beast::error_code ignored;
    connection->socket.close(ignored);
  }
}

struct FloodTally {
  std::size_t finished = 0;
  std::size_t sent_bytes = 0;
  std::map<std::string, std::size_t> statuses;
  std::vector<double> answered_after_s;
};

struct FloodConnection {
  explicit FloodConnection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  bool answered = false;
};

asio::awaitable<void> flood_reader(std::shared_ptr<FloodConnection> connection,
                                   Clock::time_point opened, FloodTally& tally) {
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  // Whatever the error, the parser says whether a response head arrived.
  co_await http::async_read(connection->socket, buffer, parser, kAsTuple);
  connection->answered = true;
  if (parser.is_header_done()) {
    ++tally.statuses[std::to_string(parser.get().result_int())];
    tally.answered_after_s.push_back(seconds_since(opened));
  } else {
    ++tally.statuses["none"];
  }
}

asio::awaitable<void> flood_connection(const FloodOptions& options, const Origin& origin,
                                       const std::string& body, FloodTally& tally) {
  auto executor = co_await asio::this_coro::executor;
  auto socket = co_await connect_socket(origin);
  if (!socket) {
    ++tally.statuses["none"];
    ++tally.finished;
    co_return;
  }
  const auto opened = Clock::now();
  auto connection = std::make_shared<FloodConnection>(std::move(*socket));
  asio::co_spawn(executor, flood_reader(connection, opened, tally), asio::detached);
  const std::string head =
      "POST " + options.path + " HTTP/1.1\r\nHost: " + origin.host + ":" + origin.port +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  auto [head_ec, head_n] =
      co_await asio::async_write(connection->socket, asio::buffer(head), kAsTuple);
  constexpr std::size_t kSlice = 64 * 1024;
  const std::size_t slices = (body.size() + kSlice - 1) / kSlice;
  asio::steady_timer pace(executor);
  for (std::size_t i = 0; !head_ec && i < slices && !connection->answered; ++i) {
    const std::size_t offset = i * kSlice;
    const std::size_t size = std::min(kSlice, body.size() - offset);
    auto [ec, n] = co_await asio::async_write(connection->socket,
                                              asio::buffer(body.data() + offset, size), kAsTuple);
    tally.sent_bytes += n;
    if (ec) {
      break;  // the server answered early and closed, or reset: the reader has the status
    }
    pace.expires_at(opened + from_seconds(options.send_s * static_cast<double>(i + 1) /
                                          static_cast<double>(slices)));
    co_await pace.async_wait(kAsTuple);
  }
  const auto give_up = Clock::now() + from_seconds(options.timeout_s);
  while (!connection->answered && Clock::now() < give_up) {
    pace.expires_after(std::chrono::milliseconds{50});
    co_await pace.async_wait(kAsTuple);
  }
  beast::error_code ignored;
  connection->socket.close(ignored);  // ends the reader if it still waits
  ++tally.finished;
}

}  // namespace

json run_requests(const RequestsOptions& options) {
  asio::io_context io;
  RequestsTally tally;
  const auto start = Clock::now();
  std::vector<std::unique_ptr<RequestsConnection>> connections;
  for (std::size_t i = 0; i < options.connections; ++i) {
    const std::string session =
        options.session_prefix.empty() ? "" : options.session_prefix + std::to_string(i);
    connections.push_back(std::make_unique<RequestsConnection>(options, session, start, tally));
    asio::co_spawn(io, connections.back()->run(), asio::detached);
  }
  io.run();
  const double elapsed_s = seconds_since(start);
  return {{"url", options.url},
          {"path", options.path},
          {"stream", options.stream},
          {"connections", options.connections},
          {"duration_s", elapsed_s},
          {"sent", tally.sent},
          {"ok", tally.ok},
          {"failed", tally.sent - tally.ok},
          {"transport_errors", tally.transport_errors},
          {"error_records", tally.error_records},
          {"cut", tally.cut},
          {"server_closed", tally.server_closed},
          {"statuses", tally.statuses},
          {"routes", tally.routes},
          {"nodes", tally.nodes},
          {"rps", static_cast<double>(tally.ok) / elapsed_s},
          {"latency_us", summary(tally.latencies_us)},
          {"failure_at_s", tally.failure_at_s}};
}

json run_slowloris(const SlowlorisOptions& options) {
  asio::io_context io;
  SlowlorisTally tally;
  const Origin origin = parse_origin(options.url);
  const auto start = Clock::now();
  const auto until = start + from_seconds(options.duration_s);
  for (std::size_t i = 0; i < options.connections; ++i) {
    const auto start_at =
        start + from_seconds(static_cast<double>(i) / std::max(options.connect_per_s, 1.0));
    asio::co_spawn(io, slow_connection(options, origin, start_at, until, tally), asio::detached);
  }
  io.run();
  return {{"url", options.url},
          {"connections", options.connections},
          {"connected", tally.connected},
          {"connect_failed", tally.connect_failed},
          {"closed_by_server", tally.closed_by_server},
          {"open_at_end", tally.connected - tally.closed_by_server},
          {"statuses", tally.statuses},
          {"closed_after_s", summary(tally.closed_after_s)},
          {"duration_s", seconds_since(start)}};
}

json run_flood(const FloodOptions& options) {
  asio::io_context io;
  FloodTally tally;
  const Origin origin = parse_origin(options.url);
  // One valid JSON body of exactly body_bytes: {"model":"llama3.2","pad":"aaa…"}.
  const std::string prefix = R"({"model":"llama3.2","pad":")";
  const std::string suffix = R"("})";
  const std::size_t pad = options.body_bytes > prefix.size() + suffix.size()
                              ? options.body_bytes - prefix.size() - suffix.size()
                              : 0;
  const std::string body = prefix + std::string(pad, 'a') + suffix;
  const std::size_t rss_before_kib = options.pid > 0 ? rss_kib(options.pid) : 0;
  std::size_t rss_peak_kib = rss_before_kib;
  const auto start = Clock::now();
  for (std::size_t i = 0; i < options.connections; ++i) {
    asio::co_spawn(io, flood_connection(options, origin, body, tally), asio::detached);
  }
  if (options.pid > 0) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer tick(co_await asio::this_coro::executor);
          while (tally.finished < options.connections) {
            rss_peak_kib = std::max(rss_peak_kib, rss_kib(options.pid));
            tick.expires_after(std::chrono::milliseconds{50});
            co_await tick.async_wait(kAsTuple);
          }
        },
        asio::detached);
  }
  io.run();
  return {{"url", options.url},
          {"connections", options.connections},
          {"body_bytes", body.size()},
          {"sent_mib", static_cast<double>(tally.sent_bytes) / (1024.0 * 1024.0)},
          {"statuses", tally.statuses},
          {"answered_after_s", summary(tally.answered_after_s)},
          {"duration_s", seconds_since(start)},
          {"server_rss_before_mib", mib(rss_before_kib)},
          {"server_rss_peak_mib", mib(rss_peak_kib)},
          {"server_hwm_mib", options.pid > 0 ? mib(proc_status_kib(options.pid, "VmHWM")) : 0.0}};
}

}  // namespace llmgw::bench::load
