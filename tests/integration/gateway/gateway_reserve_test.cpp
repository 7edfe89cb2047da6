// The interactive reserve as a user sees it (docs/DESIGN.md §2.2): under a batch flood, a node
// with an active chat session keeps one slot for it, so the chat's next turn is dispatched at
// once while batch fills the rest, and a node without active chats gives batch every slot.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

json reserve_admission(GatewayFixture& fixture, std::size_t node) {
  net::HttpClient client;
  return json::parse(get_url(client, fixture.url("/health")).body)["nodes"][node]["admission"];
}

std::string reserve_chat_turn(const std::string& prompt) {
  return json{{"model", GatewayFixture::kModel},
              {"prompt", prompt},
              {"stream", false},
              {"options", {{"num_predict", 1}}}}
      .dump();
}

TEST(GatewayReserve, AChatTurnIsDispatchedAtOnceWhileBatchFillsTheRestAndChatlessNodesLendAll) {
  // Two nodes with 4 slots each; every request streams 8 tokens 50 ms apart (0.4 s); a session
  // keeps its reserve 2 s after its last turn.
  GatewayFixtureOptions options;
  options.nodes = 2;
  options.sim = slow_sim_options(8, 50.0);
  options.sim.num_parallel = 8;  // only the gateway's cap holds the node
  options.configure = [](config::GatewayConfig& config) {
    for (auto& node : config.nodes) {
      node.max_in_flight = 4;
    }
    config.admission.interactive_reserve_idle = milliseconds{2'000};
  };
  GatewayFixture fixture(options);
  // The start hold (one session's worth for the first window) passes on both nodes.
  ASSERT_TRUE(wait_until([&] {
    return reserve_admission(fixture, 0)["reserved"] == 0 &&
           reserve_admission(fixture, 1)["reserved"] == 0;
  })) << reserve_admission(fixture, 0);

  std::string session;
  for (int i = 0; session.empty(); ++i) {
    if (fixture.ring_owner("chat-" + std::to_string(i)) == 0) {
      session = "chat-" + std::to_string(i);
    }
  }
  net::HttpClient client;
  const auto first_turn =
      post_json(client, fixture.url("/api/generate"), reserve_chat_turn("hello"), session);
  ASSERT_EQ(first_turn.status, 200) << first_turn.body;
  ASSERT_EQ(first_turn.node, fixture.node_name(0));
  EXPECT_EQ(reserve_admission(fixture, 0)["active_sessions"], 1);
  EXPECT_EQ(reserve_admission(fixture, 0)["reserved"], 1);
  EXPECT_EQ(reserve_admission(fixture, 1)["reserved"], 0);

  // The flood: more summaries than both nodes' slots.
  std::vector<std::future<Exchange>> flood;
  for (int i = 0; i < 10; ++i) {
    flood.push_back(std::async(std::launch::async, [&fixture, i] {
      net::HttpClient batch_client;
      return post_json(batch_client, fixture.url("/api/generate"),
                       generate_body("summarise document " + std::to_string(i)), {},
                       {{"X-Request-Priority", "batch"}});
    }));
  }
  ASSERT_TRUE(wait_until([&] {
    return reserve_admission(fixture, 0)["batch_in_flight"] == 3 &&
           reserve_admission(fixture, 1)["batch_in_flight"] == 4;
  })) << "batch should hold 3 slots beside the chat and all 4 of the chatless node: "
      << reserve_admission(fixture, 0) << " " << reserve_admission(fixture, 1);
  EXPECT_EQ(reserve_admission(fixture, 0)["in_flight"], 3) << "the chat's slot stays free";

  // The chat's next turn finds its slot free: dispatched at once, on its node.
  const auto next_turn =
      post_json(client, fixture.url("/api/generate"), reserve_chat_turn("and then?"), session);
  ASSERT_EQ(next_turn.status, 200) << next_turn.body;
  EXPECT_EQ(next_turn.node, fixture.node_name(0));
  for (auto& summary : flood) {
    EXPECT_EQ(summary.get().status, 200);
  }
  net::HttpClient metrics_client;
  const auto exposition = get_url(metrics_client, fixture.url("/metrics")).body;
  EXPECT_EQ(metric_sum(exposition, "llmgw_admission_dispatched_total",
                       {"class=\"interactive\"", "waited=\"false\""}),
            2.0);
  EXPECT_EQ(metric_sum(exposition, "llmgw_admission_dispatched_total",
                       {"class=\"interactive\"", "waited=\"true\""}),
            0.0)
      << "a chat turn waited for a summary";
  EXPECT_LE(fixture.sim(0).stats().generations_peak, 4U);
  EXPECT_LE(fixture.sim(1).stats().generations_peak, 4U);
}

}  // namespace
}  // namespace llmgw::testing
