#pragma once

// Cache preheating's test harness (docs/DESIGN.md §2.4): an Ollama-like node that records every
// generation request in order (a fake node where the order of preheats and turns must be seen),
// and a gateway in front of several of them, for gateway_preheat_test.cpp and
// gateway_preheat_moves_test.cpp.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "llmgw/config/gateway_config.hpp"
#include "llmgw/net/http_client.hpp"
#include "llmgw/net/http_server.hpp"
#include "llmgw/routing/hash_ring.hpp"
#include "llmgw/server/gateway.hpp"
#include "support/gateway_fixture.hpp"

namespace llmgw::testing {

inline constexpr std::string_view kPreheatToken = "preheat-admin-token";

// An Ollama-like node that records every generation request it receives, in order. It lists
// `models`; a chat whose last message says "slow" takes 600 ms; with `fail_preheats` a
// one-token request (a preheat) gets a 500. Its answers report 100 prompt tokens evaluated in
// 2 ms.
class RecordingOllamaNode {
 public:
  struct Seen {
    std::string path;
    nlohmann::json body;
    bool authorization = false;  // the request carried an Authorization header
  };

  explicit RecordingOllamaNode(std::vector<std::string> models = {"llama3.2:latest"},
                               bool fail_preheats = false);

  std::string base_url() const { return server_.base_url(); }
  std::vector<Seen> seen() const;

  // A node that is down answers everything (health checks too) with 500 and records nothing.
  void set_down(bool down) { down_.store(down); }

 private:
  struct Reply {
    int status = 200;
    std::string body;
    bool slow = false;
  };
  Reply reply_to(const net::ServerRequest& request);
  boost::asio::awaitable<void> handle(const net::ServerRequest& request,
                                      net::ResponseStream& stream);

  std::vector<std::string> models_;
  bool fail_preheats_;
  std::atomic<bool> down_{false};
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
  net::HttpServer server_;
};

// A request one-token, not streamed: a preheat.
bool is_preheat(const RecordingOllamaNode::Seen& seen);
// The content of the request's first message ("hello from <session>" for PreheatFleet turns).
std::string first_message(const RecordingOllamaNode::Seen& seen);

// A gateway in front of recording nodes node-a, node-b, ..., with the catalog on (every entry
// current before the constructor returns) and kPreheatToken as its admin token.
struct PreheatFleet {
  explicit PreheatFleet(std::vector<std::unique_ptr<RecordingOllamaNode>> fleet_nodes,
                        const std::function<void(config::GatewayConfig&)>& configure = {});
  ~PreheatFleet() { gateway.reset(); }

  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(gateway->port()) + std::string{path};
  }
  std::size_t index_of(std::string_view name) const {
    return static_cast<std::size_t>(name.back() - 'a');
  }

  // One chat turn of `session`: its history is the first message, then `then` if given.
  Exchange turn(const std::string& session, const std::string& then = {});
  // A chat of `session` whose only message is `text` ("slow ..." takes 600 ms), sent on its own
  // connection from a thread (join it).
  std::thread turn_in_background(const std::string& session, const std::string& text);
  int patch(const std::string& name, const std::string& body);
  // POST /admin/nodes: the status.
  int add_node(const std::string& name, const std::string& node_url);
  double metric(std::string_view name, const std::vector<std::string>& labels = {});
  // Waits (bounded) until the series of `name` with `label` reaches `value`.
  bool metric_reaches(std::string_view name, const std::string& label, std::size_t value);

  std::vector<std::unique_ptr<RecordingOllamaNode>> nodes;
  config::GatewayConfig config;
  net::HttpClient client;
  std::unique_ptr<server::Gateway> gateway;
};

std::vector<std::unique_ptr<RecordingOllamaNode>> recording_nodes(std::size_t count);

// The sessions whose first turn landed on `node`, out of `count` tried.
std::vector<std::string> sessions_on(PreheatFleet& fleet, std::string_view node, int count,
                                     const std::string& prefix);

// The first session `prefix`0, `prefix`1, ... that `ring` gives to member `owner`.
std::string session_owned_by(const routing::HashRing& ring, std::size_t owner,
                             const std::string& prefix);

// Waits (bounded) until /health shows node `name` healthy or not.
bool node_health_is(PreheatFleet& fleet, std::string_view name, bool healthy);

}  // namespace llmgw::testing
