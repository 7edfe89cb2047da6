#include "keyed_mode.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <memory>
#include <random>

#include "load_common.hpp"

namespace llmgw::bench::load {
namespace {

namespace http = beast::http;
using nlohmann::json;

// Idle keep-alive connections to one replica.
struct Replica {
  Origin origin;
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;
  std::size_t opened = 0;
};

struct KeyedResult {
  std::vector<double> first_us;
  std::vector<double> later_us;
  std::size_t errors = 0;
  std::size_t sent = 0;
  std::size_t in_flight = 0;
  std::size_t max_in_flight = 0;
  std::map<std::string, std::size_t> statuses;
};

struct Arrival {
  std::string session;
  bool first_turn = false;
  bool measured = true;
  Clock::time_point scheduled;
};

asio::awaitable<void> send_turn(Replica& replica, Arrival arrival, std::string body,
                                KeyedResult& result) {
  ++result.in_flight;
  result.max_in_flight = std::max(result.max_in_flight, result.in_flight);
  std::unique_ptr<beast::tcp_stream> stream;
  if (!replica.idle.empty()) {
    stream = std::move(replica.idle.back());
    replica.idle.pop_back();
  } else if (auto fresh = co_await connect(replica.origin)) {
    stream = std::make_unique<beast::tcp_stream>(std::move(*fresh));
    ++replica.opened;
  }
  bool ok = false;
  if (stream) {
    http::request<http::string_body> request{http::verb::post, "/api/generate", 11};
    request.set(http::field::host, replica.origin.host + ":" + replica.origin.port);
    request.set(http::field::content_type, "application/json");
    request.set("X-Session-ID", arrival.session);
    request.body() = std::move(body);
    request.prepare_payload();
    request.keep_alive(true);
    stream->expires_after(std::chrono::seconds{10});
    auto [write_ec, written] = co_await http::async_write(*stream, request, kAsTuple);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    beast::error_code read_ec = write_ec;
    if (!write_ec) {
      std::tie(read_ec, std::ignore) =
          co_await http::async_read(*stream, buffer, response, kAsTuple);
    }
    if (!read_ec) {
      ++result.statuses[std::to_string(response.result_int())];
      ok = response.result_int() == 200;
      if (response.keep_alive() && buffer.size() == 0) {
        replica.idle.push_back(std::move(stream));
      }
    }
  }
  if (!ok) {
    ++result.errors;
  } else if (arrival.measured) {
    (arrival.first_turn ? result.first_us : result.later_us)
        .push_back(micros(Clock::now() - arrival.scheduled));
  }
  --result.in_flight;
}

std::string generate_body(const std::string& session, std::size_t turn, std::size_t tokens) {
  return json{{"model", "llama3.2"},
              {"prompt", "turn " + std::to_string(turn) + " of " + session},
              {"stream", false},
              {"options", {{"num_predict", tokens}}}}
      .dump();
}

asio::awaitable<void> schedule(const KeyedOptions& options, std::vector<Replica>& replicas,
                               KeyedResult& result, Clock::time_point& last_arrival) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  std::mt19937 random(options.seed);
  std::uniform_int_distribution<std::size_t> pick(0, replicas.size() - 1);
  const auto start = Clock::now() + std::chrono::milliseconds{50};
  const auto total = static_cast<std::size_t>(options.rate * options.duration_s);
  const auto warmup = static_cast<std::size_t>(options.rate * options.warmup_s);
  for (std::size_t k = 0; k < total; ++k) {
    const auto at = start + from_seconds(static_cast<double>(k) / options.rate);
    timer.expires_at(at);
    co_await timer.async_wait(kAsTuple);
    const std::size_t slot = k % options.window;
    const std::size_t round = k / options.window;
    const std::size_t turn = round % options.turns;
    const std::size_t generation = round / options.turns;
    Arrival arrival;
    arrival.session =
        options.session_prefix + std::to_string(generation) + "-" + std::to_string(slot);
    arrival.first_turn = turn == 0;
    arrival.measured = k >= warmup;
    arrival.scheduled = at;
    ++result.sent;
    asio::co_spawn(executor,
                   send_turn(replicas[pick(random)], std::move(arrival),
                             generate_body(options.session_prefix + std::to_string(generation) +
                                               "-" + std::to_string(slot),
                                           turn, options.tokens),
                             result),
                   asio::detached);
    last_arrival = at;
  }
}

}  // namespace

json run_keyed(const KeyedOptions& options) {
  if (options.urls.empty() || options.rate <= 0 || options.window == 0 || options.turns == 0) {
    throw std::invalid_argument(
        "keyed: give --url (one or more), --rate > 0, --window > 0, "
        "--turns > 0");
  }
  asio::io_context io;
  std::vector<Replica> replicas;
  for (const auto& url : options.urls) {
    replicas.push_back({parse_origin(url), {}, 0});
  }
  KeyedResult result;
  Clock::time_point last_arrival{};
  const auto started = Clock::now();
  asio::co_spawn(io, schedule(options, replicas, result, last_arrival), asio::detached);
  io.run();
  const double elapsed_s = seconds_since(started);
  std::size_t connections = 0;
  for (const auto& replica : replicas) {
    connections += replica.opened;
  }
  return {{"mode", "keyed"},
          {"urls", options.urls},
          {"rate", options.rate},
          {"duration_s", options.duration_s},
          {"turns", options.turns},
          {"window", options.window},
          {"sent", result.sent},
          {"errors", result.errors},
          {"statuses", result.statuses},
          {"achieved_rate", static_cast<double>(result.sent) / options.duration_s},
          {"elapsed_s", elapsed_s},
          {"max_in_flight", result.max_in_flight},
          {"connections_opened", connections},
          {"first_turn_us", summary(result.first_us)},
          {"later_turns_us", summary(result.later_us)}};
}

}  // namespace llmgw::bench::load
