// Admission as clients and nodes see it (docs/DESIGN.md §2.2): the cap holds on the node itself,
// interactive requests overtake waiting batch ones, a full queue is a 429 with Retry-After while
// a fleet with no eligible node is a 503, a client that leaves its place in the queue costs the
// node nothing, and an unknown priority class is a 400.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

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
using Clock = std::chrono::steady_clock;

// One node whose sim streams `tokens` tokens 50 ms apart, behind a gateway with `cap` slots.
GatewayFixtureOptions one_node(std::size_t cap, std::size_t tokens,
                               std::function<void(config::GatewayConfig&)> more = {}) {
  GatewayFixtureOptions options;
  options.nodes = 1;
  options.sim = slow_sim_options(tokens, 50.0);
  options.sim.num_parallel = 8;  // the node would take more: only the gateway's cap holds it
  options.configure = [cap, more](config::GatewayConfig& config) {
    config.nodes[0].max_in_flight = cap;
    if (more) {
      more(config);
    }
  };
  return options;
}

json node_admission(GatewayFixture& fixture) {
  net::HttpClient client;
  return json::parse(get_url(client, fixture.url("/health")).body)["nodes"][0]["admission"];
}

std::size_t queued(GatewayFixture& fixture, std::string_view priority) {
  return node_admission(fixture)["queued"][std::string{priority}].get<std::size_t>();
}

std::future<Exchange> post_async(GatewayFixture& fixture, std::string prompt,
                                 std::string priority = {}) {
  return std::async(std::launch::async, [&fixture, prompt = std::move(prompt), priority] {
    net::HttpClient client;
    net::HttpHeaders headers;
    if (!priority.empty()) {
      headers.push_back({"X-Request-Priority", priority});
    }
    return post_json(client, fixture.url("/api/generate"), generate_body(prompt), {}, headers);
  });
}

std::string header_of(const Exchange& exchange, std::string_view name) {
  return std::string{exchange.response.header(name).value_or("")};
}

std::string metrics_text(GatewayFixture& fixture) {
  net::HttpClient client;
  return get_url(client, fixture.url("/metrics")).body;
}

TEST(GatewayAdmission, TheCapHoldsOnTheNodeAndTheRestWaitInTheGateway) {
  GatewayFixture fixture(one_node(2, 4));
  std::vector<std::future<Exchange>> requests;
  for (int i = 0; i < 8; ++i) {
    requests.push_back(post_async(fixture, "capped " + std::to_string(i)));
  }
  for (auto& request : requests) {
    const auto exchange = request.get();
    EXPECT_EQ(exchange.status, 200) << exchange.body;
  }
  const auto stats = fixture.sim(0).stats();
  EXPECT_EQ(stats.inference_requests, 8U);
  EXPECT_LE(stats.generations_peak, 2U) << "the node held more than the gateway's cap";
  EXPECT_EQ(stats.generations_peak, 2U) << "the cap was never used fully";
  const auto exposition = metrics_text(fixture);
  EXPECT_GE(metric_sum(exposition, "llmgw_admission_dispatched_total",
                       {"class=\"interactive\"", "waited=\"true\""}),
            1.0)
      << "8 requests on 2 slots: some waited";
  const auto admission = node_admission(fixture);
  EXPECT_EQ(admission["max_in_flight"], 2);
  EXPECT_EQ(admission["in_flight"], 0);
  EXPECT_TRUE(admission["service_seconds"].is_number()) << admission;
}

TEST(GatewayAdmission, AWaitingInteractiveRequestOvertakesAWaitingBatchRequest) {
  GatewayFixture fixture(one_node(1, 6));
  auto holder = post_async(fixture, "holds the only slot");
  ASSERT_TRUE(wait_until([&] { return node_admission(fixture)["in_flight"] == 1; }));
  auto batch = post_async(fixture, "a summary", "batch");
  ASSERT_TRUE(wait_until([&] { return queued(fixture, "batch") == 1; }));
  auto interactive = post_async(fixture, "a chat turn", "interactive");
  ASSERT_TRUE(wait_until([&] { return queued(fixture, "interactive") == 1; }));

  ASSERT_EQ(holder.get().status, 200);
  const auto interactive_exchange = interactive.get();
  const auto interactive_done = Clock::now();
  ASSERT_EQ(interactive_exchange.status, 200) << interactive_exchange.body;
  // The batch request is still waiting for its turn, or running: not done.
  EXPECT_EQ(batch.wait_for(milliseconds{0}), std::future_status::timeout)
      << "the batch request finished before the interactive one that came after it";
  const auto batch_exchange = batch.get();
  ASSERT_EQ(batch_exchange.status, 200) << batch_exchange.body;
  EXPECT_GE(Clock::now() - interactive_done, milliseconds{150})
      << "the batch request ran alongside, not after";
}

TEST(GatewayAdmission, AFullQueueIs429WithRetryAfterAndAWaitPastItsLimitToo) {
  GatewayFixture fixture(one_node(1, 8, [](config::GatewayConfig& config) {
    config.admission.interactive.max_queue = 1;
    config.admission.batch.max_wait = milliseconds{200};
  }));
  auto holder = post_async(fixture, "holds the only slot");
  ASSERT_TRUE(wait_until([&] { return node_admission(fixture)["in_flight"] == 1; }));
  auto waiting = post_async(fixture, "waits");
  ASSERT_TRUE(wait_until([&] { return queued(fixture, "interactive") == 1; }));

  net::HttpClient client;
  const auto full = post_json(client, fixture.url("/api/generate"), generate_body("no room"));
  ASSERT_EQ(full.status, 429) << full.body;
  EXPECT_EQ(header_of(full, "X-Gateway-Reject-Reason"), "queue_full");
  const auto retry_after = header_of(full, "Retry-After");
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  const auto body = json::parse(full.body);
  EXPECT_EQ(body["reason"], "queue_full");
  EXPECT_EQ(body["class"], "interactive");
  EXPECT_EQ(body["limit"], "admission.interactive.max_queue");
  EXPECT_EQ(body["retry_after_seconds"].get<int>(), std::stoi(retry_after));

  // Batch has its own queue (room for 256) but may wait only 200 ms; the slot is busy longer.
  const auto started = Clock::now();
  const auto late = post_json(client, fixture.url("/api/generate"), generate_body("too slow"), {},
                              {{"X-Request-Priority", "batch"}});
  const auto took = Clock::now() - started;
  ASSERT_EQ(late.status, 429) << late.body;
  EXPECT_EQ(header_of(late, "X-Gateway-Reject-Reason"), "max_wait");
  EXPECT_EQ(json::parse(late.body)["limit"], "admission.batch.max_wait_ms");
  EXPECT_GE(took, milliseconds{180});
  EXPECT_LT(took, milliseconds{3'000});

  EXPECT_EQ(holder.get().status, 200);
  EXPECT_EQ(waiting.get().status, 200);
  EXPECT_EQ(fixture.sim(0).stats().inference_requests, 2U) << "a refused request reached the node";
  const auto exposition = metrics_text(fixture);
  EXPECT_EQ(metric_sum(exposition, "llmgw_admission_rejected_total",
                       {"class=\"interactive\"", "reason=\"queue_full\""}),
            1.0);
  EXPECT_EQ(metric_sum(exposition, "llmgw_admission_rejected_total",
                       {"class=\"batch\"", "reason=\"max_wait\""}),
            1.0);
}

TEST(GatewayAdmission, NoEligibleNodeIs503NotA429) {
  GatewayFixture fixture(one_node(1, 2, [](config::GatewayConfig& config) {
    config.health.interval = milliseconds{50};
    config.health.unhealthy_threshold = 1;
    config.health.base_ejection = milliseconds{60'000};
  }));
  fixture.stop_sim(0);
  net::HttpClient client;
  ASSERT_TRUE(wait_until([&] {
    return !json::parse(get_url(client, fixture.url("/health")).body)["nodes"][0]["healthy"]
                .get<bool>();
  })) << "the node was never ejected";
  const auto exchange = post_json(client, fixture.url("/api/generate"), generate_body("anyone?"));
  ASSERT_EQ(exchange.status, 503) << exchange.body;
  EXPECT_EQ(header_of(exchange, "X-Gateway-Reject-Reason"), "no_eligible_node");
  EXPECT_FALSE(header_of(exchange, "Retry-After").empty());
}

TEST(GatewayAdmission, AClientThatLeavesTheQueueIsRemovedAtOnceAndNothingReachesTheNode) {
  GatewayFixture fixture(one_node(1, 8));
  auto holder = post_async(fixture, "holds the only slot");
  ASSERT_TRUE(wait_until([&] { return node_admission(fixture)["in_flight"] == 1; }));

  const std::string body = generate_body("I will not wait");
  const std::string request =
      "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = connect_loopback(fixture.gateway().port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ASSERT_TRUE(wait_until([&] { return queued(fixture, "interactive") == 1; }));
  ::close(fd);
  // Removed while the slot is still busy (the holder streams for 400 ms).
  ASSERT_TRUE(wait_until([&] { return queued(fixture, "interactive") == 0; }, milliseconds{300}))
      << "the departed client still holds its place";
  EXPECT_EQ(holder.get().status, 200);
  EXPECT_EQ(fixture.sim(0).stats().inference_requests, 1U)
      << "the departed client's request reached the node";
  EXPECT_EQ(metric_sum(metrics_text(fixture), "llmgw_admission_rejected_total",
                       {"reason=\"client_gone\""}),
            1.0);
}

TEST(GatewayAdmission, AnUnknownPriorityClassIs400NamingTheAcceptedValues) {
  GatewayFixture fixture(one_node(1, 2));
  net::HttpClient client;
  const auto exchange = post_json(client, fixture.url("/api/generate"), generate_body("hi"), {},
                                  {{"X-Request-Priority", "urgent"}});
  ASSERT_EQ(exchange.status, 400) << exchange.body;
  const auto message = json::parse(exchange.body)["error"].get<std::string>();
  EXPECT_NE(message.find("X-Request-Priority"), std::string::npos) << message;
  EXPECT_NE(message.find("urgent"), std::string::npos) << message;
  EXPECT_NE(message.find("interactive, batch"), std::string::npos) << message;
  EXPECT_EQ(fixture.sim(0).stats().inference_requests, 0U);
  // A known class in any case is accepted.
  const auto batch = post_json(client, fixture.url("/api/generate"), generate_body("hi"), {},
                               {{"X-Request-Priority", "Batch"}});
  EXPECT_EQ(batch.status, 200) << batch.body;
}

// A generate body that stops after `tokens` tokens.
std::string short_generation(const std::string& prompt, int tokens) {
  return json{
      {"model", GatewayFixture::kModel}, {"prompt", prompt}, {"options", {{"num_predict", tokens}}}}
      .dump();
}

std::string session_owned_by(const GatewayFixture& fixture, std::size_t node, std::string prefix) {
  for (int i = 0;; ++i) {
    std::string session = prefix + std::to_string(i);
    if (fixture.ring_owner(session) == node) {
      return session;
    }
  }
}

TEST(GatewayAdmission, ASessionWaitsForItsFullNodeWhenAColdPrefillElsewhereWouldCostMore) {
  // Two nodes with one slot each; prefill 20,000 tokens/s (0.05 ms per token), decode 25 ms per
  // token, 20 tokens unless the request asks for fewer.
  GatewayFixtureOptions options;
  options.nodes = 2;
  options.sim = slow_sim_options(20, 25.0);
  options.sim.latency.prefill_tokens_per_s = 20'000;
  options.configure = [](config::GatewayConfig& config) {
    for (auto& node : config.nodes) {
      node.max_in_flight = 1;
    }
  };
  GatewayFixture fixture(options);
  const std::string session = session_owned_by(fixture, 0, "warm-");
  const std::string holder_session = session_owned_by(fixture, 0, "holder-");
  const std::string other_session = session_owned_by(fixture, 1, "other-");
  net::HttpClient client;
  // What the estimate learns from: node a's service time (a 2-token turn, ~50 ms) and node b's
  // prefill rate (a 200-token prompt it has not seen).
  auto exchange =
      post_json(client, fixture.url("/api/generate"), short_generation("turn one", 2), session);
  ASSERT_EQ(exchange.node, fixture.node_name(0));
  exchange = post_json(client, fixture.url("/api/generate"),
                       short_generation(std::string(800, 'p'), 2), other_session);
  ASSERT_EQ(exchange.node, fixture.node_name(1));
  ASSERT_TRUE(wait_until([&] {
    const auto health = json::parse(get_url(client, fixture.url("/health")).body);
    return health["nodes"][1]["admission"]["prefill_seconds_per_token"].is_number();
  })) << "node b's prefill rate was not learnt";

  // Node a busy for 0.5 s.
  auto holder = std::async(std::launch::async, [&] {
    net::HttpClient own;
    return post_json(own, fixture.url("/api/generate"), short_generation("hold", 20),
                     holder_session);
  });
  ASSERT_TRUE(wait_until([&] { return node_admission(fixture)["in_flight"] == 1; }));

  // A short history (100 tokens: 5 ms cold on b) is not worth a ~50 ms wait: it spills.
  exchange = post_json(client, fixture.url("/api/generate"),
                       short_generation(std::string(400, 's'), 2), session);
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  EXPECT_EQ(exchange.node, fixture.node_name(1));
  EXPECT_EQ(exchange.route, "spill");
  // A long one (10,000 tokens: 0.5 s cold on b) waits for node a, where its session is.
  exchange = post_json(client, fixture.url("/api/generate"),
                       short_generation(std::string(40'000, 'l'), 2), session);
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  EXPECT_EQ(exchange.node, fixture.node_name(0));
  EXPECT_EQ(exchange.route, "affinity");
  EXPECT_EQ(holder.get().status, 200);

  const auto exposition = metrics_text(fixture);
  EXPECT_EQ(metric_sum(exposition, "llmgw_admission_warm_wait_total", {"decision=\"spilled\""}),
            1.0);
  EXPECT_EQ(metric_sum(exposition, "llmgw_admission_warm_wait_total", {"decision=\"waited\""}),
            1.0);
  EXPECT_EQ(metric_sum(exposition, "llmgw_admission_estimate_seconds_count"), 4.0)
      << "two decisions, each observed on both sides";
}

TEST(GatewayAdmission, BatchLeavesTheInteractiveReserveFreeWhileChatsComeAndUsesItOtherwise) {
  // One node, cap 2, reserve 1 (the default) held 1.5 s after a chat; each request streams 8
  // tokens 50 ms apart.
  GatewayFixture fixture(one_node(2, 8, [](config::GatewayConfig& config) {
    config.admission.interactive_reserve_idle = milliseconds{1'500};
  }));
  // A new node holds one session's reserve until the idle time passed; then batch may take
  // every slot.
  EXPECT_EQ(node_admission(fixture)["reserved"], 1);
  ASSERT_TRUE(wait_until([&] { return node_admission(fixture)["reserved"] == 0; }));
  auto first_batch = post_async(fixture, "summary one", "batch");
  auto second_batch = post_async(fixture, "summary two", "batch");
  ASSERT_TRUE(wait_until([&] { return node_admission(fixture)["in_flight"] == 2; }))
      << "without chats batch should use the reserve too: " << node_admission(fixture);
  ASSERT_EQ(first_batch.get().status, 200);
  ASSERT_EQ(second_batch.get().status, 200);

  // A chat turn: from now on batch leaves one slot free.
  net::HttpClient client;
  ASSERT_EQ(post_json(client, fixture.url("/api/generate"), short_generation("hello", 1)).status,
            200);
  EXPECT_EQ(node_admission(fixture)["reserved"], 1);
  auto third_batch = post_async(fixture, "summary three", "batch");
  ASSERT_TRUE(wait_until([&] { return node_admission(fixture)["in_flight"] == 1; }));
  auto fourth_batch = post_async(fixture, "summary four", "batch");
  ASSERT_TRUE(wait_until([&] { return queued(fixture, "batch") == 1; }))
      << "the second batch request took the reserved slot: " << node_admission(fixture);
  EXPECT_EQ(node_admission(fixture)["in_flight"], 1);

  // The next chat turn finds the reserved slot free: it is admitted at once, not after a summary.
  const auto turn =
      post_json(client, fixture.url("/api/generate"), short_generation("next turn", 1));
  ASSERT_EQ(turn.status, 200) << turn.body;
  EXPECT_EQ(fourth_batch.wait_for(milliseconds{0}), std::future_status::timeout)
      << "the chat turn waited until a summary ended";
  EXPECT_EQ(third_batch.get().status, 200);
  EXPECT_EQ(fourth_batch.get().status, 200);
  EXPECT_LE(fixture.sim(0).stats().generations_peak, 2U);
}

TEST(GatewayAdmission, EachNodesCacheReuseComesFromItsAffinityTurns) {
  GatewayFixture fixture(one_node(4, 2));
  net::HttpClient client;
  std::string history;
  for (int i = 0; i < 60; ++i) {
    history += "the history of this conversation, turn after turn. ";
  }
  const auto cache_reuse = [&] { return node_admission(fixture)["cache_reuse"]; };
  // The first turn prefills cold: it teaches the node's cold rate and says nothing about reuse.
  auto exchange = post_json(client, fixture.url("/api/generate"), short_generation(history, 1),
                            "reusing-session");
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  EXPECT_TRUE(cache_reuse().is_null()) << node_admission(fixture);
  // The next turn extends it by a third: about two thirds of its prompt come from the cache.
  exchange = post_json(client, fixture.url("/api/generate"),
                       short_generation(history + history.substr(0, history.size() / 2), 1),
                       "reusing-session");
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  ASSERT_EQ(exchange.route, "affinity");
  ASSERT_TRUE(cache_reuse().is_number()) << node_admission(fixture);
  const double warm = cache_reuse().get<double>();
  EXPECT_GT(warm, 0.5);
  // A session whose history the node no longer holds (another text of the same kind) reads cold.
  std::string other;
  for (int i = 0; i < 60; ++i) {
    other += "an unrelated document that this node has never seen. ";
  }
  ASSERT_EQ(
      post_json(client, fixture.url("/api/generate"), short_generation(other, 1), "evicted-session")
          .status,
      200);
  EXPECT_LT(cache_reuse().get<double>(), warm * 0.7) << node_admission(fixture);
  // A batch request is a new document each time: it says nothing about the chats' caches.
  const double before = cache_reuse().get<double>();
  std::string document;
  for (int i = 0; i < 60; ++i) {
    document += "a document to summarise, which no chat has ever sent. ";
  }
  ASSERT_EQ(post_json(client, fixture.url("/api/generate"), short_generation(document, 1),
                      "batch-document", {{"X-Request-Priority", "batch"}})
                .status,
            200);
  EXPECT_DOUBLE_EQ(cache_reuse().get<double>(), before) << node_admission(fixture);
  EXPECT_NE(metrics_text(fixture).find("llmgw_admission_cache_reuse{node=\""), std::string::npos);
}

}  // namespace
}  // namespace llmgw::testing
