#pragma once

// Pieces shared by the modes of llmgw_load (load_gen.cpp: rps, stream, open; chaos_modes.cpp:
// requests, slowloris, flood): URL parsing, a connect with a deadline, percentiles as JSON, a
// server's memory from /proc. Header-only: the load generator is one executable outside the
// library.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "llmgw/bench/report.hpp"

namespace llmgw::bench::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

inline constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

struct Origin {
  std::string host;
  std::string port;
};

inline Origin parse_origin(const std::string& url) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed || parsed->scheme() != "http") {
    throw std::invalid_argument("not an http URL: " + url);
  }
  return {std::string(parsed->host()), parsed->has_port() ? std::string(parsed->port()) : "80"};
}

inline double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

inline Clock::duration from_seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

inline nlohmann::json summary(const std::vector<double>& values) {
  return {{"p50", percentile(values, 0.5)},
          {"p90", percentile(values, 0.9)},
          {"p99", percentile(values, 0.99)},
          {"max", values.empty() ? 0.0 : percentile(values, 1.0)},
          {"count", values.size()}};
}

inline asio::awaitable<std::optional<beast::tcp_stream>> connect(const Origin& origin) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [resolve_ec, endpoints] =
      co_await resolver.async_resolve(origin.host, origin.port, kAsTuple);
  if (resolve_ec) {
    co_return std::nullopt;
  }
  beast::tcp_stream stream(executor);
  stream.expires_after(std::chrono::seconds{10});
  auto [ec, endpoint] = co_await stream.async_connect(endpoints, kAsTuple);
  if (ec) {
    co_return std::nullopt;
  }
  stream.socket().set_option(tcp::no_delay(true));
  co_return std::move(stream);
}

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); 0 when the process or field is gone.
inline std::size_t proc_status_kib(int pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) {
      return std::stoul(line.substr(prefix.size()));
    }
  }
  return 0;
}

inline std::size_t rss_kib(int pid) {
  return proc_status_kib(pid, "VmRSS");
}

inline double mib(std::size_t kib) {
  return static_cast<double>(kib) / 1024.0;
}

}  // namespace llmgw::bench::load
