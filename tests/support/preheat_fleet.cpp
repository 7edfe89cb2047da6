#include "support/preheat_fleet.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <chrono>

#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

net::ServerOptions recording_server_options() {
  net::ServerOptions options;
  options.threads = 4;
  return options;
}

}  // namespace

RecordingOllamaNode::RecordingOllamaNode(std::vector<std::string> models, bool fail_preheats)
    : models_(std::move(models)),
      fail_preheats_(fail_preheats),
      server_(recording_server_options(),
              [this](const net::ServerRequest& request, net::ResponseStream& stream) {
                return handle(request, stream);
              }) {
  server_.start();
}

boost::asio::awaitable<void> RecordingOllamaNode::handle(const net::ServerRequest& request,
                                                         net::ResponseStream& stream) {
  Reply reply = reply_to(request);
  if (reply.slow) {
    co_await stream.sleep(std::chrono::milliseconds{600});
  }
  net::HttpHeaders headers;
  headers.push_back({"Content-Type", "application/json"});
  co_await stream.respond(reply.status, std::move(headers), std::move(reply.body));
}

std::vector<RecordingOllamaNode::Seen> RecordingOllamaNode::seen() const {
  std::lock_guard lock(mutex_);
  return seen_;
}

// Everything but the I/O (GCC 12 miscompiles some initializer lists inside coroutines).
RecordingOllamaNode::Reply RecordingOllamaNode::reply_to(const net::ServerRequest& request) {
  if (down_.load()) {
    return {500, R"({"error":"down"})"};
  }
  if (request.path() == "/api/tags") {
    json list = json::array();
    for (const auto& model : models_) {
      list.push_back({{"name", model}, {"model", model}});
    }
    return {200, json{{"models", list}}.dump()};
  }
  if (request.path() == "/api/ps") {
    return {200, R"({"models":[]})"};
  }
  if (request.path() != "/api/chat") {
    return {200, R"({"version":"0.9.0"})"};
  }
  const auto body = json::parse(request.body, nullptr, false);
  {
    std::lock_guard lock(mutex_);
    seen_.push_back(
        {std::string{request.path()}, body, request.header("Authorization").has_value()});
  }
  const bool preheat = body.contains("options") && body["options"].value("num_predict", 0) == 1;
  if (preheat && fail_preheats_) {
    return {500, R"({"error":"preheat refused"})"};
  }
  const json answer{{"model", body.value("model", "")},
                    {"message", {{"role", "assistant"}, {"content", "ok"}}},
                    {"done", true},
                    {"done_reason", "stop"},
                    {"prompt_eval_count", 100},
                    {"prompt_eval_duration", 2'000'000},
                    {"eval_count", 1},
                    {"eval_duration", 1'000'000}};
  const bool slow =
      body["messages"].back().value("content", std::string{}).find("slow") != std::string::npos;
  return {200, answer.dump(), slow};
}

bool is_preheat(const RecordingOllamaNode::Seen& seen) {
  return seen.body.contains("options") && seen.body["options"].value("num_predict", 0) == 1 &&
         seen.body.value("stream", true) == false;
}

std::string first_message(const RecordingOllamaNode::Seen& seen) {
  return seen.body["messages"][0].value("content", std::string{});
}

PreheatFleet::PreheatFleet(std::vector<std::unique_ptr<RecordingOllamaNode>> fleet_nodes,
                           const std::function<void(config::GatewayConfig&)>& configure)
    : nodes(std::move(fleet_nodes)) {
  std::vector<config::NodeConfig> configs;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    configs.push_back(
        test_node(std::string{"node-"} + static_cast<char>('a' + i), nodes[i]->base_url()));
  }
  config = test_gateway_config(configs);
  config.admin.token = std::string{kPreheatToken};
  config.catalog.interval = std::chrono::milliseconds{200};
  if (configure) {
    configure(config);
  }
  config::validate(config);
  gateway = std::make_unique<server::Gateway>(config);
  gateway->start();
  // Routing by model needs every catalog entry.
  EXPECT_TRUE(wait_until([&] {
    const auto health = json::parse(get_url(client, url("/health")).body);
    return std::all_of(health["nodes"].begin(), health["nodes"].end(),
                       [](const json& node) { return node["catalog"]["current"] == true; });
  }));
}

Exchange PreheatFleet::turn(const std::string& session, const std::string& then) {
  json messages = json::array({{{"role", "user"}, {"content", "hello from " + session}}});
  if (!then.empty()) {
    messages.push_back({{"role", "assistant"}, {"content", "ok"}});
    messages.push_back({{"role", "user"}, {"content", then}});
  }
  const json body{{"model", "llama3.2"}, {"messages", messages}, {"stream", false}};
  return post_json(client, url("/api/chat"), body.dump(), session,
                   {{"Authorization", "Bearer client-secret-never-kept"}});
}

std::thread PreheatFleet::turn_in_background(const std::string& session, const std::string& text) {
  return std::thread([this, session, text] {
    net::HttpClient own;
    const json body{{"model", "llama3.2"},
                    {"messages", json::array({{{"role", "user"}, {"content", text}}})},
                    {"stream", false}};
    EXPECT_EQ(post_json(own, url("/api/chat"), body.dump(), session).status, 200);
  });
}

int PreheatFleet::add_node(const std::string& name, const std::string& node_url) {
  net::ClientRequest add;
  add.method = "POST";
  add.url = url("/admin/nodes");
  add.headers = {{"Authorization", "Bearer " + std::string{kPreheatToken}},
                 {"Content-Type", "application/json"}};
  add.body = json{{"name", name}, {"url", node_url}}.dump();
  return client.send(add).status;
}

int PreheatFleet::patch(const std::string& name, const std::string& body) {
  net::ClientRequest request;
  request.method = "PATCH";
  request.url = url("/admin/nodes/" + name);
  request.headers = {{"Authorization", "Bearer " + std::string{kPreheatToken}},
                     {"Content-Type", "application/json"}};
  request.body = body;
  return client.send(request).status;
}

double PreheatFleet::metric(std::string_view name, const std::vector<std::string>& labels) {
  return metric_sum(get_url(client, url("/metrics")).body, name, labels);
}

bool PreheatFleet::metric_reaches(std::string_view name, const std::string& label,
                                  std::size_t value) {
  return wait_until([&] { return metric(name, {label}) == static_cast<double>(value); });
}

std::vector<std::unique_ptr<RecordingOllamaNode>> recording_nodes(std::size_t count) {
  std::vector<std::unique_ptr<RecordingOllamaNode>> nodes;
  for (std::size_t i = 0; i < count; ++i) {
    nodes.push_back(std::make_unique<RecordingOllamaNode>());
  }
  return nodes;
}

std::vector<std::string> sessions_on(PreheatFleet& fleet, std::string_view node, int count,
                                     const std::string& prefix) {
  std::vector<std::string> on_node;
  for (int i = 0; i < count; ++i) {
    const std::string session = prefix + std::to_string(i);
    const auto first = fleet.turn(session);
    EXPECT_EQ(first.status, 200) << first.body;
    if (first.node == node) {
      on_node.push_back(session);
    }
  }
  return on_node;
}

std::string session_owned_by(const routing::HashRing& ring, std::size_t owner,
                             const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string session = prefix + std::to_string(i);
    if (ring.owner(routing::ring_position(session)) == owner) {
      return session;
    }
  }
}

bool node_health_is(PreheatFleet& fleet, std::string_view name, bool healthy) {
  return wait_until([&] {
    const auto health = json::parse(get_url(fleet.client, fleet.url("/health")).body);
    for (const auto& node : health["nodes"]) {
      if (node["name"] == name) {
        return node["healthy"].get<bool>() == healthy;
      }
    }
    return false;
  });
}

}  // namespace llmgw::testing
