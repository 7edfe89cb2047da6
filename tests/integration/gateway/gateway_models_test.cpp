// Routing by model (issue 9): sims holding different models behind one gateway. A request for a
// held model reaches only holders; a model nobody holds gets 404 without touching a node; a node
// that loses a model is corrected after one 404; an OpenAI-compatible node (the sim in its
// llama-server flavour) is probed on /health and listed from /v1/models.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "llmgw/server/gateway.hpp"
#include "llmgw/sim/ollama_sim.hpp"
#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

// Sims with the given inventories (one vector of names per node) behind a gateway.
class ModelFleet {
 public:
  explicit ModelFleet(const std::vector<std::vector<std::string>>& inventories,
                      const std::vector<sim::SimFlavor>& flavors = {},
                      std::chrono::milliseconds catalog_interval = std::chrono::seconds{30}) {
    std::vector<config::NodeConfig> nodes;
    for (std::size_t i = 0; i < inventories.size(); ++i) {
      auto options = fast_sim_options();
      options.models.assign(inventories[i].begin(), inventories[i].end());
      options.flavor = i < flavors.size() ? flavors[i] : sim::SimFlavor::ollama;
      auto sim = std::make_unique<sim::OllamaSim>(options);
      sim->start();
      auto node = test_node("n" + std::to_string(i), sim->base_url());
      if (options.flavor == sim::SimFlavor::llama_server) {
        node.api = "openai";
      }
      nodes.push_back(node);
      sims.push_back(std::move(sim));
    }
    config = test_gateway_config(nodes);
    config.catalog.interval = catalog_interval;
    config.health.interval = std::chrono::milliseconds{200};
    config::validate(config);
    gateway = std::make_unique<server::Gateway>(config);
    gateway->start();
  }

  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(gateway->port()) + std::string{path};
  }

  json health(net::HttpClient& client) const {
    return json::parse(get_url(client, url("/health")).body);
  }

  // Until every node's catalog entry is current.
  bool catalog_ready(net::HttpClient& client) const {
    return wait_until([&] {
      const auto body = health(client);
      for (const auto& node : body["nodes"]) {
        if (!node["catalog"]["current"].get<bool>()) {
          return false;
        }
      }
      return true;
    });
  }

  // Requests node `index`'s sim received on `endpoint`.
  double sim_requests(net::HttpClient& client, std::size_t index, std::string_view endpoint) {
    const auto metrics = client.send({"GET", sims[index]->base_url() + "/metrics", {}, {}});
    return metric_sum(metrics.body, "ollama_sim_requests_total",
                      {"endpoint=\"" + std::string{endpoint} + "\""});
  }

  std::vector<std::unique_ptr<sim::OllamaSim>> sims;
  config::GatewayConfig config;
  std::unique_ptr<server::Gateway> gateway;
};

std::string chat_body(std::string_view model, std::string_view text) {
  return json{{"model", model},
              {"stream", false},
              {"messages", json::array({{{"role", "user"}, {"content", text}}})}}
      .dump();
}

TEST(GatewayModels, RequestsReachOnlyNodesThatHoldTheirModel) {
  // n0: a, b; n1: b, c; n2: a, c.
  ModelFleet fleet({{"alpha", "beta"}, {"beta", "gamma"}, {"alpha", "gamma"}});
  net::HttpClient client;
  ASSERT_TRUE(fleet.catalog_ready(client)) << "every node's catalog fetched";
  const std::map<std::string, std::vector<std::string>> holders{
      {"alpha", {"n0", "n2"}}, {"beta", {"n0", "n1"}}, {"gamma", {"n1", "n2"}}};
  for (int turn = 0; turn < 30; ++turn) {
    for (const auto& [model, nodes] : holders) {
      // Keyed and unkeyed requests, and the name with its :latest tag.
      const std::string name = turn % 2 == 0 ? model : model + ":latest";
      const auto session = turn % 3 == 0 ? std::string{} : "s-" + std::to_string(turn);
      const auto got = post_json(client, fleet.url("/api/chat"),
                                 chat_body(name, "hello " + std::to_string(turn)), session);
      ASSERT_EQ(got.status, 200) << model << ": " << got.body;
      EXPECT_THAT(nodes, ::testing::Contains(got.node)) << model;
    }
  }
  // Each request reached exactly one node: none went to a node without its model first (that
  // node's 404 would have been retried on a holder, adding a request).
  double reached = 0;
  for (std::size_t i = 0; i < fleet.sims.size(); ++i) {
    reached += fleet.sim_requests(client, i, "/api/chat");
  }
  EXPECT_EQ(reached, 90.0);
  for (std::size_t i = 0; i < fleet.sims.size(); ++i) {
    EXPECT_GT(fleet.sim_requests(client, i, "/api/chat"), 0.0) << "node n" << i << " served";
  }
}

TEST(GatewayModels, AModelNoNodeHoldsGets404WithoutTouchingANode) {
  ModelFleet fleet({{"alpha"}, {"beta"}});
  net::HttpClient client;
  ASSERT_TRUE(fleet.catalog_ready(client));
  const auto ollama = post_json(client, fleet.url("/api/chat"), chat_body("nope", "hi"));
  EXPECT_EQ(ollama.status, 404);
  EXPECT_EQ(json::parse(ollama.body)["error"], "model \"nope\" not found, try pulling it first");
  const auto openai = post_json(
      client, fleet.url("/v1/chat/completions"),
      json{{"model", "nope"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}
          .dump());
  EXPECT_EQ(openai.status, 404);
  const auto error = json::parse(openai.body)["error"];
  EXPECT_EQ(error["type"], "not_found_error");
  EXPECT_THAT(error["message"].get<std::string>(), ::testing::HasSubstr("\"nope\" not found"));
  const auto anthropic =
      post_json(client, fleet.url("/v1/messages"),
                json{{"model", "nope"},
                     {"max_tokens", 8},
                     {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}
                    .dump());
  EXPECT_EQ(anthropic.status, 404);
  EXPECT_EQ(json::parse(anthropic.body)["type"], "error");
  for (std::size_t i = 0; i < fleet.sims.size(); ++i) {
    EXPECT_EQ(fleet.sim_requests(client, i, "/api/chat"), 0.0);
    EXPECT_EQ(fleet.sim_requests(client, i, "/v1/chat/completions"), 0.0);
    EXPECT_EQ(fleet.sim_requests(client, i, "/v1/messages"), 0.0);
  }
}

TEST(GatewayModels, ANodeThatLostAModelIsCorrectedAfterOne404) {
  ModelFleet fleet({{"alpha"}, {"alpha"}, {"alpha"}});
  net::HttpClient client;
  ASSERT_TRUE(fleet.catalog_ready(client));
  // The session's node loses the model behind the gateway's back (the catalog is 30 s old).
  const auto first = post_json(client, fleet.url("/api/chat"), chat_body("alpha", "one"), "s1");
  ASSERT_EQ(first.status, 200);
  const std::size_t lost = std::stoul(first.node.substr(1));
  const auto deleted = client.send({"DELETE",
                                    fleet.sims[lost]->base_url() + "/api/delete",
                                    {{"Content-Type", "application/json"}},
                                    R"({"model":"alpha"})"});
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  // The next turn meets the 404, which is not passed on: the next holder answers.
  const auto second = post_json(client, fleet.url("/api/chat"), chat_body("alpha", "two"), "s1");
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_NE(second.node, first.node);
  EXPECT_EQ(fleet.sim_requests(client, lost, "/api/chat"), 2.0);
  // The entry is corrected: no further request reaches that node.
  for (int turn = 0; turn < 10; ++turn) {
    const auto got =
        post_json(client, fleet.url("/api/chat"), chat_body("alpha", "t" + std::to_string(turn)),
                  "s" + std::to_string(turn));
    EXPECT_EQ(got.status, 200);
    EXPECT_NE(got.node, first.node);
  }
  EXPECT_EQ(fleet.sim_requests(client, lost, "/api/chat"), 2.0);
  const auto health = fleet.health(client);
  EXPECT_THAT(health["nodes"][lost]["catalog"]["models"], ::testing::IsEmpty());
}

TEST(GatewayModels, CatalogAndMetricsShowEachNodesModels) {
  ModelFleet fleet({{"alpha", "beta"}, {"beta"}});
  net::HttpClient client;
  ASSERT_TRUE(fleet.catalog_ready(client));
  const auto health = fleet.health(client);
  EXPECT_THAT(health["nodes"][0]["catalog"]["models"],
              ::testing::ElementsAre("alpha:latest", "beta:latest"));
  EXPECT_THAT(health["nodes"][1]["catalog"]["loaded"], ::testing::IsEmpty());
  EXPECT_TRUE(health["nodes"][1]["catalog"]["error"].is_null());
  EXPECT_TRUE(health["nodes"][1]["catalog"]["age_ms"].is_number());
  const auto served = post_json(client, fleet.url("/api/chat"), chat_body("beta", "x"), "k");
  ASSERT_EQ(served.status, 200);
  const auto metrics = get_url(client, fleet.url("/metrics")).body;
  EXPECT_EQ(metric_sum(metrics, "llmgw_node_models", {"node=\"n0\""}), 2.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_node_models", {"node=\"n1\""}), 1.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_node_models_loaded", {"node=\"" + served.node + "\""}), 1.0);
}

TEST(GatewayModels, AnOpenAiNodeIsProbedOnHealthAndListedFromV1Models) {
  ModelFleet fleet({{"alpha"}, {"beta"}}, {sim::SimFlavor::ollama, sim::SimFlavor::llama_server});
  net::HttpClient client;
  ASSERT_TRUE(fleet.catalog_ready(client));
  // Checks run every 200 ms: a failing /api/version probe would have ejected it by now.
  ASSERT_TRUE(wait_until([&] { return fleet.sim_requests(client, 1, "/health") >= 3; }));
  const auto health = fleet.health(client);
  EXPECT_EQ(health["nodes"][1]["api"], "openai");
  EXPECT_TRUE(health["nodes"][1]["healthy"].get<bool>());
  EXPECT_THAT(health["nodes"][1]["catalog"]["models"], ::testing::ElementsAre("beta:latest"));
  EXPECT_THAT(health["nodes"][1]["catalog"]["loaded"], ::testing::ElementsAre("beta:latest"));
  EXPECT_EQ(fleet.sim_requests(client, 1, "/api/version"), 0.0);
  for (int turn = 0; turn < 6; ++turn) {
    const auto got = post_json(
        client, fleet.url("/v1/chat/completions"),
        json{{"model", "beta"},
             {"messages", json::array({{{"role", "user"}, {"content", std::to_string(turn)}}})}}
            .dump());
    ASSERT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(got.node, "n1");
  }
  EXPECT_EQ(post_json(client, fleet.url("/api/chat"), chat_body("alpha", "x")).node, "n0");
}

TEST(GatewayModels, CatalogOffRoutesModelBlind) {
  ModelFleet fleet({{"alpha"}, {"beta"}}, {}, std::chrono::milliseconds{0});
  net::HttpClient client;
  int not_found = 0;
  for (int turn = 0; turn < 8; ++turn) {
    const auto got = post_json(client, fleet.url("/api/chat"), chat_body("alpha", "x"));
    not_found += got.status == 404 ? 1 : 0;
  }
  EXPECT_GT(not_found, 0) << "round-robin reaches the node without the model";
  EXPECT_FALSE(fleet.health(client)["nodes"][0]["catalog"]["current"].get<bool>());
}

}  // namespace
}  // namespace llmgw::testing
