// llmgw_load: the load generator of the overhead and capacity benchmarks (bench/run-overhead.sh).
// One io_context on one thread, one coroutine per connection, so the generator itself needs one
// core at most and can hold thousands of open streams.
//
//   llmgw_load rps    --url U [--connections C] [--duration-s D] [--path /api/version]
//                     [--session-prefix P]   (connection i sends X-Session-ID: P<i>)
//                     [--body JSON]          (POST the JSON body instead of a GET)
//   llmgw_load stream --url-a DIRECT --url-b GATEWAY [--requests K] [--tokens N]
//   llmgw_load open   --url U --streams N [--hold-s H] [--connect-per-s R] [--pid P]
//   llmgw_load requests  --url U [--connections C] [--duration-s D] [--requests N] [--path P]
//                        [--no-stream] [--tokens T] [--session-prefix S] [--think-ms M]
//   llmgw_load keyed  --url U [--url U2 ...] [--rate R] [--duration-s D] [--turns T] [--window W]
//                     (open loop, sessions' turns to random replicas; keyed_mode.hpp)
//   llmgw_load slowloris --url U [--connections C] [--duration-s D] [--interval-ms I]
//   llmgw_load flood     --url U [--connections C] [--body-bytes B] [--send-s S] [--pid P]
//
// The last three are the modes of `make chaos` (bench/chaos/run.sh; chaos_modes.hpp).
// Each prints one JSON object on stdout. Latencies are in microseconds.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaos_modes.hpp"
#include "keyed_mode.hpp"
#include "llmgw/bench/report.hpp"
#include "load_common.hpp"

namespace {

namespace http = boost::beast::http;
using namespace llmgw::bench::load;
using nlohmann::json;

// ---- rps: short requests on keep-alive connections for a fixed time ----------------------------

struct RpsResult {
  std::vector<double> latencies_us;
  std::size_t errors = 0;
};

asio::awaitable<void> rps_connection(Origin origin, std::string path, std::string body,
                                     std::string session, Clock::time_point until,
                                     RpsResult& result) {
  auto stream = co_await connect(origin);
  if (!stream) {
    ++result.errors;
    co_return;
  }
  beast::flat_buffer buffer;
  http::request<http::string_body> request{body.empty() ? http::verb::get : http::verb::post, path,
                                           11};
  request.set(http::field::host, origin.host + ":" + origin.port);
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::move(body);
    request.prepare_payload();
  }
  if (!session.empty()) {
    request.set("X-Session-ID", session);
  }
  request.keep_alive(true);
  while (Clock::now() < until) {
    const auto sent = Clock::now();
    stream->expires_after(std::chrono::seconds{10});
    auto [write_ec, bytes_written] = co_await http::async_write(*stream, request, kAsTuple);
    if (write_ec) {
      ++result.errors;
      co_return;
    }
    http::response<http::string_body> response;
    auto [read_ec, bytes_read] = co_await http::async_read(*stream, buffer, response, kAsTuple);
    if (read_ec || response.result_int() != 200) {
      ++result.errors;
      co_return;  // one broken connection ends its loop; the error count says so
    }
    result.latencies_us.push_back(micros(Clock::now() - sent));
    if (!response.keep_alive()) {
      co_return;
    }
  }
  beast::error_code ignored;
  stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
}

json run_rps(const std::string& url, const std::string& path, const std::string& body,
             std::size_t connections, double duration_s, const std::string& session_prefix) {
  asio::io_context io;
  RpsResult result;
  const auto started = Clock::now();
  const auto until = started + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(duration_s));
  for (std::size_t i = 0; i < connections; ++i) {
    const std::string session = session_prefix.empty() ? "" : session_prefix + std::to_string(i);
    asio::co_spawn(io, rps_connection(parse_origin(url), path, body, session, until, result),
                   asio::detached);
  }
  io.run();
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();
  return {{"url", url},
          {"path", path},
          {"method", body.empty() ? "GET" : "POST"},
          {"session_prefix", session_prefix},
          {"connections", connections},
          {"duration_s", elapsed_s},
          {"requests", result.latencies_us.size()},
          {"errors", result.errors},
          {"rps", static_cast<double>(result.latencies_us.size()) / elapsed_s},
          {"latency_us", summary(result.latencies_us)}};
}

// ---- streaming: when the head and each NDJSON record arrive ------------------------------------

struct StreamTiming {
  bool ok = false;
  int status = 0;                  // of the response head; 0 = none (connect or read failed)
  double head_us = 0.0;            // response head received
  std::vector<double> records_us;  // each complete record received
};

std::string chat_body(std::size_t tokens) {
  return json{{"model", "llama3.2"},
              {"messages", json::array({{{"role", "user"}, {"content", "hello"}}})},
              {"stream", true},
              {"options", {{"num_predict", tokens}}}}
      .dump();
}

asio::awaitable<StreamTiming> timed_stream(Origin origin, std::size_t tokens,
                                           std::chrono::seconds idle_timeout,
                                           std::optional<Clock::time_point> close_at = {}) {
  StreamTiming timing;
  auto stream = co_await connect(origin);
  if (!stream) {
    co_return timing;
  }
  http::request<http::string_body> request{http::verb::post, "/api/chat", 11};
  request.set(http::field::host, origin.host + ":" + origin.port);
  request.set(http::field::content_type, "application/json");
  request.body() = chat_body(tokens);
  request.prepare_payload();
  const auto sent = Clock::now();
  stream->expires_after(idle_timeout);
  auto [write_ec, written] = co_await http::async_write(*stream, request, kAsTuple);
  if (write_ec) {
    co_return timing;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  auto [head_ec, head_bytes] = co_await http::async_read_header(*stream, buffer, parser, kAsTuple);
  if (!head_ec) {
    timing.status = parser.get().result_int();
  }
  if (head_ec || parser.get().result_int() != 200) {
    co_return timing;
  }
  timing.head_us = micros(Clock::now() - sent);
  std::array<char, 8192> chunk{};
  while (!parser.is_done()) {
    if (close_at && Clock::now() >= *close_at) {
      timing.ok = true;  // held open as long as asked
      co_return timing;
    }
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    stream->expires_after(idle_timeout);
    auto [ec, n] = co_await http::async_read_some(*stream, buffer, parser, kAsTuple);
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      co_return timing;
    }
    const std::size_t got = chunk.size() - parser.get().body().size;
    const double now_us = micros(Clock::now() - sent);
    for (std::size_t i = 0; i < got; ++i) {
      if (chunk[i] == '\n') {
        timing.records_us.push_back(now_us);
      }
    }
  }
  timing.ok = true;
  co_return timing;
}

json run_stream(const std::string& url_a, const std::string& url_b, std::size_t requests,
                std::size_t tokens) {
  asio::io_context io;
  std::vector<StreamTiming> a_runs;
  std::vector<StreamTiming> b_runs;
  // Alternate A and B, one request at a time, so drift in machine load hits both alike.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < requests; ++i) {
          a_runs.push_back(
              co_await timed_stream(parse_origin(url_a), tokens, std::chrono::seconds{60}));
          b_runs.push_back(
              co_await timed_stream(parse_origin(url_b), tokens, std::chrono::seconds{60}));
        }
      },
      asio::detached);
  io.run();
  const auto describe = [](const std::vector<StreamTiming>& runs) {
    std::vector<double> heads;
    std::vector<double> firsts;
    std::vector<double> gaps;
    std::size_t errors = 0;
    for (const auto& run : runs) {
      if (!run.ok || run.records_us.empty()) {
        ++errors;
        continue;
      }
      heads.push_back(run.head_us);
      firsts.push_back(run.records_us.front());
      for (std::size_t i = 1; i < run.records_us.size(); ++i) {
        gaps.push_back(run.records_us[i] - run.records_us[i - 1]);
      }
    }
    return json{{"head_us", summary(heads)},
                {"first_record_us", summary(firsts)},
                {"record_gap_us", summary(gaps)},
                {"errors", errors}};
  };
  // Added delay per record index: median arrival through B minus median arrival through A.
  std::vector<double> added_per_record;
  const std::size_t records = std::min(a_runs.empty() ? 0 : a_runs.front().records_us.size(),
                                       b_runs.empty() ? 0 : b_runs.front().records_us.size());
  for (std::size_t i = 0; i < records; ++i) {
    std::vector<double> a_at;
    std::vector<double> b_at;
    for (const auto& run : a_runs) {
      if (run.ok && run.records_us.size() > i) {
        a_at.push_back(run.records_us[i]);
      }
    }
    for (const auto& run : b_runs) {
      if (run.ok && run.records_us.size() > i) {
        b_at.push_back(run.records_us[i]);
      }
    }
    added_per_record.push_back(llmgw::bench::percentile(b_at, 0.5) -
                               llmgw::bench::percentile(a_at, 0.5));
  }
  json a = describe(a_runs);
  json b = describe(b_runs);
  return {{"a", a},
          {"b", b},
          {"requests", requests},
          {"added_head_us", b["head_us"]["p50"].get<double>() - a["head_us"]["p50"].get<double>()},
          {"added_first_record_us",
           b["first_record_us"]["p50"].get<double>() - a["first_record_us"]["p50"].get<double>()},
          {"added_per_record_us", summary(added_per_record)}};
}

// ---- open: N concurrent streams held open, errors and the server's peak RSS --------------------

json run_open(const std::string& url, std::size_t streams, double hold_s, double connect_per_s,
              int pid) {
  asio::io_context io;
  std::size_t opened = 0;
  std::size_t errors = 0;
  std::size_t finished = 0;
  std::map<std::string, std::size_t> statuses;  // "200", "503", ... and "none"
  std::size_t peak_rss_kib = pid > 0 ? rss_kib(pid) : 0;
  const std::size_t idle_rss_kib = peak_rss_kib;
  const auto started = Clock::now();
  const auto ramp = std::chrono::duration<double>(static_cast<double>(streams) / connect_per_s);
  const auto close_at = started + std::chrono::duration_cast<Clock::duration>(
                                      ramp + std::chrono::duration<double>(hold_s));
  std::optional<double> all_done_s;  // the last stream closed (after its hold)
  const Origin origin = parse_origin(url);
  for (std::size_t i = 0; i < streams; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          asio::steady_timer delay(co_await asio::this_coro::executor);
          delay.expires_at(
              started + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(static_cast<double>(i) / connect_per_s)));
          co_await delay.async_wait(kAsTuple);
          // 100k tokens: the stream outlives the hold time; the client closes it.
          const auto timing =
              co_await timed_stream(origin, 100'000, std::chrono::seconds{30}, close_at);
          if (timing.head_us > 0.0) {
            ++opened;
          }
          if (finished + 1 == streams) {
            all_done_s = std::chrono::duration<double>(Clock::now() - started).count();
          }
          if (!timing.ok) {
            ++errors;
          }
          ++statuses[timing.status == 0 ? std::string{"none"} : std::to_string(timing.status)];
          ++finished;
        },
        asio::detached);
  }
  if (pid > 0) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer tick(co_await asio::this_coro::executor);
          while (finished < streams) {
            peak_rss_kib = std::max(peak_rss_kib, rss_kib(pid));
            tick.expires_after(std::chrono::milliseconds{100});
            co_await tick.async_wait(kAsTuple);
          }
        },
        asio::detached);
  }
  io.run();
  return {{"url", url},
          {"streams", streams},
          {"opened", opened},
          {"errors", errors},
          {"statuses", statuses},
          {"all_closed_after_s", all_done_s ? json(*all_done_s) : json(nullptr)},
          {"hold_s", hold_s},
          {"server_rss_idle_mib", static_cast<double>(idle_rss_kib) / 1024.0},
          {"server_rss_peak_mib", static_cast<double>(peak_rss_kib) / 1024.0}};
}

// The `make chaos` subcommands and their options (chaos_modes.hpp).
struct ChaosCommands {
  RequestsOptions requests;
  SlowlorisOptions slowloris;
  FloodOptions flood;
  bool no_stream = false;
  CLI::App* requests_cmd = nullptr;
  CLI::App* slowloris_cmd = nullptr;
  CLI::App* flood_cmd = nullptr;
};

void add_chaos_commands(CLI::App& app, ChaosCommands& chaos) {
  auto& r = chaos.requests;
  auto* req = app.add_subcommand(
      "requests", "Generation requests, counted per status, route, error record and cut body");
  req->add_option("--url", r.url, "Base URL")->required();
  req->add_option("--path", r.path, "/api/chat, /api/generate or /v1/chat/completions")
      ->capture_default_str();
  req->add_option("--connections", r.connections, "Concurrent connections")->capture_default_str();
  req->add_option("--duration-s", r.duration_s, "Stop starting requests after this (0 = none)")
      ->capture_default_str();
  req->add_option("--requests", r.requests, "Requests in all (0 = until --duration-s)")
      ->capture_default_str();
  req->add_flag("--no-stream", chaos.no_stream, "Ask for one JSON body instead of a stream");
  req->add_option("--tokens", r.tokens, "Tokens to generate per request")->capture_default_str();
  req->add_option("--session-prefix", r.session_prefix,
                  "Send X-Session-ID: <prefix><connection index> (keyed routing)");
  req->add_option("--timeout-s", r.timeout_s, "One request, end to end")->capture_default_str();
  req->add_option("--think-ms", r.think_ms, "Pause between a connection's requests")
      ->capture_default_str();
  chaos.requests_cmd = req;

  auto& s = chaos.slowloris;
  auto* slow = app.add_subcommand("slowloris", "Connections sending a request head byte by byte");
  slow->add_option("--url", s.url, "Base URL")->required();
  slow->add_option("--connections", s.connections, "Connections")->capture_default_str();
  slow->add_option("--duration-s", s.duration_s, "Run time")->capture_default_str();
  slow->add_option("--interval-ms", s.interval_ms, "Time between two bytes")->capture_default_str();
  slow->add_option("--connect-per-s", s.connect_per_s, "Connection rate")->capture_default_str();
  chaos.slowloris_cmd = slow;

  auto& f = chaos.flood;
  auto* flood = app.add_subcommand("flood", "Connections each POSTing one large body slowly");
  flood->add_option("--url", f.url, "Base URL")->required();
  flood->add_option("--path", f.path, "Request path")->capture_default_str();
  flood->add_option("--connections", f.connections, "Connections")->capture_default_str();
  flood->add_option("--body-bytes", f.body_bytes, "Body size of each")->capture_default_str();
  flood->add_option("--send-s", f.send_s, "Time to send each body")->capture_default_str();
  flood->add_option("--timeout-s", f.timeout_s, "Wait for the answer after the body")
      ->capture_default_str();
  flood->add_option("--pid", f.pid, "Server process whose memory to sample");
  chaos.flood_cmd = flood;
}

// Runs the chaos subcommand that was parsed; nullopt when another one was.
std::optional<json> run_chaos_command(ChaosCommands& chaos) {
  if (*chaos.requests_cmd) {
    if (chaos.requests.requests == 0 && chaos.requests.duration_s <= 0.0) {
      throw std::invalid_argument("requests: give --requests or --duration-s");
    }
    chaos.requests.stream = !chaos.no_stream;
    return run_requests(chaos.requests);
  }
  if (*chaos.slowloris_cmd) {
    return run_slowloris(chaos.slowloris);
  }
  if (*chaos.flood_cmd) {
    return run_flood(chaos.flood);
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"llmgw_load: load generator for the gateway's benchmarks and `make chaos`"};
  app.require_subcommand(1);
  std::string url;
  std::string url_a;
  std::string url_b;
  std::string path = "/api/version";
  std::string session_prefix;
  std::string body;
  std::size_t connections = 1;
  double duration_s = 5.0;
  std::size_t requests = 20;
  std::size_t tokens = 8;
  std::size_t streams = 1000;
  double hold_s = 5.0;
  double connect_per_s = 2000.0;
  int pid = 0;

  auto* rps = app.add_subcommand("rps", "Short requests on keep-alive connections");
  rps->add_option("--url", url, "Base URL")->required();
  rps->add_option("--path", path, "Request path")->capture_default_str();
  rps->add_option("--connections", connections, "Concurrent connections")->capture_default_str();
  rps->add_option("--duration-s", duration_s, "Run time")->capture_default_str();
  rps->add_option("--session-prefix", session_prefix,
                  "Send X-Session-ID: <prefix><connection index> (keyed routing)");
  rps->add_option("--body", body, "POST this JSON body instead of a GET");

  auto* stream = app.add_subcommand("stream", "Streaming delay: A (direct) against B (gateway)");
  stream->add_option("--url-a", url_a, "Base URL A (direct)")->required();
  stream->add_option("--url-b", url_b, "Base URL B (through the gateway)")->required();
  stream->add_option("--requests", requests, "Requests to each")->capture_default_str();
  stream->add_option("--tokens", tokens, "num_predict of each")->capture_default_str();

  auto* open = app.add_subcommand("open", "Hold N streams open at once");
  open->add_option("--url", url, "Base URL")->required();
  open->add_option("--streams", streams, "Concurrent streams")->capture_default_str();
  open->add_option("--hold-s", hold_s, "Hold time after the last stream opened")
      ->capture_default_str();
  open->add_option("--connect-per-s", connect_per_s, "Connection rate")->capture_default_str();
  open->add_option("--pid", pid, "Server process whose RSS to sample");
  KeyedOptions keyed_options;
  auto* keyed = app.add_subcommand(
      "keyed", "Open-loop sessions at a fixed rate to random replicas, first turns apart");
  keyed->add_option("--url", keyed_options.urls, "Replica base URLs (each request: one at random)")
      ->required();
  keyed->add_option("--rate", keyed_options.rate, "Arrivals per second")->capture_default_str();
  keyed->add_option("--duration-s", keyed_options.duration_s, "Scheduling time")
      ->capture_default_str();
  keyed->add_option("--turns", keyed_options.turns, "Turns per session")->capture_default_str();
  keyed->add_option("--window", keyed_options.window, "Sessions in progress at once")
      ->capture_default_str();
  keyed->add_option("--session-prefix", keyed_options.session_prefix, "X-Session-ID prefix")
      ->capture_default_str();
  keyed->add_option("--tokens", keyed_options.tokens, "num_predict of each request")
      ->capture_default_str();
  keyed->add_option("--warmup-s", keyed_options.warmup_s, "Arrivals sent but not measured")
      ->capture_default_str();
  keyed->add_option("--seed", keyed_options.seed, "Replica choice")->capture_default_str();
  ChaosCommands chaos;
  add_chaos_commands(app, chaos);

  CLI11_PARSE(app, argc, argv);
  try {
    json result;
    if (auto chaos_result = run_chaos_command(chaos)) {
      result = std::move(*chaos_result);
    } else if (*keyed) {
      result = run_keyed(keyed_options);
    } else if (*rps) {
      result = run_rps(url, path, body, connections, duration_s, session_prefix);
    } else if (*stream) {
      result = run_stream(url_a, url_b, requests, tokens);
    } else {
      result = run_open(url, streams, hold_s, connect_per_s, pid);
    }
    std::cout << result.dump() << '\n';
  } catch (const std::exception& e) {
    std::cerr << "llmgw_load: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
