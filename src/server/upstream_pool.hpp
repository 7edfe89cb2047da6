#pragma once

// Internal: keep-alive connections to the nodes, per worker thread.
//
// A pooled connection is only worth reusing if the node still holds its end. Nodes close idle
// keep-alive connections on their own schedule (Go's http.Server, uvicorn's 5 s in vLLM, and
// llama.cpp's server after every streamed response, although it announced keep-alive); a request
// written to such a socket fails before any response byte. So take() hands out only connections
// that are younger than the configured idle age (timeouts.upstream_idle_ms) and that show no EOF,
// error or stray bytes on a non-blocking peek; the rest are closed on the spot. What can still
// race (the node closes between the peek and the write) is caught by the attempt, which retries
// once on a brand-new connection without counting it against the node (upstream_attempt.hpp).
//
// Thread safety: none; one worker thread owns each pool.

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "stream.hpp"

namespace llmgw::server::detail {

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  // The most recently pooled usable connection to `key` ("http://host:port" or
  // "https://host:port": connections to one address are interchangeable whatever the node's
  // name, plain and TLS ones are not), else nullopt.
  std::optional<Stream> take(const std::string& key, Clock::duration max_idle_age,
                             Clock::time_point now);
  // Keeps `stream` for reuse unless `max_idle` connections to `key` are pooled already.
  void put(const std::string& key, Stream stream, std::size_t max_idle, Clock::time_point now);
  void clear();

  std::size_t idle_count(const std::string& key) const;
  // Connections closed by take() because they were too old or the node had closed them.
  std::uint64_t discarded() const noexcept { return discarded_; }

 private:
  struct Idle {
    Stream stream;
    Clock::time_point since;
  };
  std::unordered_map<std::string, std::vector<Idle>> idle_;
  std::uint64_t discarded_ = 0;
};

}  // namespace llmgw::server::detail
