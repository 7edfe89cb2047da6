#pragma once

// The gateway's integration harness: three in-process ollama-sim nodes (fast time scale) behind an
// in-process Gateway on an ephemeral port, plus request helpers over net::HttpClient. Each test
// builds its own fixture, so tests share no ports or files and run in parallel under ctest.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/config/gateway_config.hpp"
#include "llmgw/net/http_client.hpp"
#include "llmgw/routing/hash_ring.hpp"
#include "llmgw/server/gateway.hpp"
#include "llmgw/sim/ollama_sim.hpp"

namespace llmgw::testing {

// Every simulated delay is tiny (about 0.2 ms per token), replies are 4..12 tokens.
sim::SimOptions fast_sim_options();

// A sim that streams `tokens` tokens at `token_interval_ms` each (prefill is negligible), for tests
// that need a request to stay in flight.
sim::SimOptions slow_sim_options(std::size_t tokens, double token_interval_ms);

// A gateway configuration for tests: listen 127.0.0.1:0, 2 workers, the given nodes (resolved),
// short timeouts, the access log off, health checks rare (tests that need them shorten them).
config::GatewayConfig test_gateway_config(const std::vector<config::NodeConfig>& nodes);

// A resolved node config for `url`, named `name`.
config::NodeConfig test_node(const std::string& name, const std::string& url);

struct GatewayFixtureOptions {
  std::size_t nodes = 3;
  sim::SimOptions sim = fast_sim_options();
  // Applied to the configuration after the nodes are set, before the gateway starts.
  std::function<void(config::GatewayConfig&)> configure{};
};

class GatewayFixture {
 public:
  static constexpr std::string_view kModel = "llama3.2";

  explicit GatewayFixture(GatewayFixtureOptions options = {});
  ~GatewayFixture();
  GatewayFixture(const GatewayFixture&) = delete;
  GatewayFixture& operator=(const GatewayFixture&) = delete;

  server::Gateway& gateway() { return *gateway_; }
  const config::GatewayConfig& config() const { return config_; }
  std::size_t node_count() const { return sims_.size(); }
  sim::OllamaSim& sim(std::size_t index) { return *sims_.at(index); }
  const std::string& node_name(std::size_t index) const { return config_.nodes.at(index).name; }
  // Index of the node called `name`; fails the test (and returns nullopt) for an unknown name.
  std::optional<std::size_t> node_index(std::string_view name) const;

  // Stops node `index`'s sim (its port then refuses connections).
  void stop_sim(std::size_t index);
  // Starts a fresh sim on the port node `index` had (after stop_sim).
  void restart_sim(std::size_t index);

  // "http://127.0.0.1:PORT/path" on the gateway.
  std::string url(std::string_view path) const;

  // The ring owner of `session`, computed with routing::HashRing over the configured node names,
  // not through the gateway's router.
  std::size_t ring_owner(std::string_view session) const;
  // All nodes clockwise from the session's position (owner first).
  std::vector<std::size_t> ring_order(std::string_view session) const;

 private:
  GatewayFixtureOptions options_;
  std::vector<std::unique_ptr<sim::OllamaSim>> sims_;
  config::GatewayConfig config_;
  routing::HashRing ring_;
  std::unique_ptr<server::Gateway> gateway_;
};

// One inference request's outcome as the client saw it.
struct Exchange {
  int status = 0;
  std::string node;   // X-Gateway-Node
  std::string route;  // X-Gateway-Route
  std::string body;
  net::ClientResponse response;
};

// POSTs `body` to `url` with Content-Type JSON, the session header when `session` is non-empty, and
// `extra` headers; streams the body through `on_body` when given (then Exchange::body stays empty).
Exchange post_json(net::HttpClient& client, const std::string& url, const std::string& body,
                   std::string_view session = {}, const net::HttpHeaders& extra = {},
                   const net::BodyCallback& on_body = {});

// A streamed POST (post_json with a body callback) as the client saw it arrive: the body, the
// pieces it came in, and when the first piece and the end came after the request was sent.
struct StreamedExchange {
  Exchange exchange;
  std::string body;
  int chunks = 0;
  std::optional<std::chrono::steady_clock::duration> first_chunk_after;
  std::chrono::steady_clock::duration total{};
};
StreamedExchange post_streamed(net::HttpClient& client, const std::string& url,
                               const std::string& body, std::string_view session);

// The node (X-Gateway-Node) each session's turn lands on: one non-streamed /api/generate per
// session, in order; each must answer 200.
std::vector<std::string> session_nodes(GatewayFixture& fixture, net::HttpClient& client,
                                       const std::vector<std::string>& sessions);

Exchange get_url(net::HttpClient& client, const std::string& url,
                 const net::HttpHeaders& headers = {});

// An /api/generate body for the fixture's model.
std::string generate_body(std::string_view prompt, bool stream = true);

// The non-empty lines of an NDJSON body, parsed.
std::vector<nlohmann::json> ndjson_records(const std::string& body);

// A blocking TCP connection to 127.0.0.1:`port` with `timeout_ms` on sends and receives: the
// descriptor, or -1 with errno set (ECONNREFUSED when nothing listens).
int connect_loopback(std::uint16_t port, int timeout_ms = 5'000);

// Sends raw bytes on a new loopback connection to `port` and returns everything the server sent
// until it closed the connection (or `timeout_ms` passed). A reset after data is not an error.
std::string raw_exchange(std::uint16_t port, const std::string& bytes, int timeout_ms = 5'000);

// The status code of a raw HTTP response ("HTTP/1.1 413 ..." -> 413), 0 if there is none.
int raw_status(const std::string& response);
// The body of a raw HTTP response (everything after the blank line).
std::string raw_body(const std::string& response);

// The sum of the samples of `metric` whose label set contains every one of `labels`
// ("name{a=\"x\",b=\"y\"} v" lines of a Prometheus text exposition).
double metric_sum(const std::string& exposition, std::string_view metric,
                  const std::vector<std::string>& labels = {});

}  // namespace llmgw::testing
