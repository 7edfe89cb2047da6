// The official Ollama JavaScript client (npm package `ollama`, installed by scripts/install-deps
// into tools/ollama-js-check) sees one fleet through the gateway: list() is the union, pull()
// streams to its end and reaches the nodes named, ps() says each model's node, and a pull that
// fails on one node throws with that node's name. Fails (never skips) when Node.js or the package
// is missing.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/run_process.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

TEST(GatewayFleetClient, OllamaJsSeesOneFleet) {
  const std::filesystem::path check_dir =
      std::filesystem::path{LLMGW_SOURCE_DIR} / "tools" / "ollama-js-check";
  ASSERT_TRUE(std::filesystem::exists(check_dir / "node_modules" / "ollama" / "package.json"))
      << "the ollama npm package is not installed in " << check_dir
      << ": run scripts/install-deps (make deps)";

  std::vector<std::unique_ptr<sim::OllamaSim>> sims;
  std::vector<config::NodeConfig> nodes;
  const std::vector<std::vector<sim::ModelSpec>> models{{"llama3.2"}, {"phi3"}, {"phi3"}};
  for (std::size_t i = 0; i < models.size(); ++i) {
    auto options = fast_sim_options();
    options.models = models[i];
    options.fail_pull = i == 2;  // node-c cannot pull
    sims.push_back(std::make_unique<sim::OllamaSim>(options));
    sims.back()->start();
    nodes.push_back(
        test_node(std::string{"node-"} + static_cast<char>('a' + i), sims.back()->base_url()));
  }
  server::Gateway gateway(test_gateway_config(nodes));
  gateway.start();
  net::HttpClient client;
  const auto body = json{{"model", "phi3"}, {"prompt", "hi"}, {"stream", false}}.dump();
  ASSERT_EQ(post_json(client, sims[1]->base_url() + "/api/generate", body).status, 200);

  const auto result = run_process({"/usr/bin/env", "node", (check_dir / "check.mjs").string(),
                                   "http://127.0.0.1:" + std::to_string(gateway.port()),
                                   "gemma2:2b", "node-a,node-b", "mistral"},
                                  {}, std::chrono::seconds{60});
  ASSERT_EQ(result.exit_code, 0) << "node failed (is Node.js installed? scripts/install-deps)\n"
                                 << result.out << result.err;
  const auto seen = json::parse(result.out);
  EXPECT_EQ(seen["before"], (json::array({"llama3.2:latest", "phi3:latest"})));
  EXPECT_EQ(seen["after"], (json::array({"gemma2:2b", "llama3.2:latest", "phi3:latest"})));
  EXPECT_EQ(seen["progress_nodes"], (json::array({"node-a", "node-b"})));
  EXPECT_EQ(seen["last_status"], "success");
  EXPECT_EQ(seen["ps"], (json::array({{{"name", "phi3:latest"}, {"node", "node-b"}}})));
  EXPECT_NE(seen["pull_error"].get<std::string>().find("node node-c"), std::string::npos)
      << seen.dump();
}

}  // namespace
}  // namespace llmgw::testing
