// What the emulator models: KV cache reuse across turns, the bounded queue, cancellation when the
// client leaves, and the fault switches.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/sim/sim_test_support.hpp"
#include "llmgw/sim/tokenizer.hpp"
#include "support/wait.hpp"

namespace llmgw::sim {
namespace {

using llmgw::testing::wait_until;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::get;
using testing::ndjson_records;
using testing::post;
using testing::RunningSim;

milliseconds elapsed_since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

std::string chat_body(const json& messages, bool stream) {
  return json{{"model", "llama3.2"}, {"messages", messages}, {"stream", stream}}.dump();
}

TEST(OllamaSimBehaviour, SecondTurnOfAConversationIsServedFromTheKvCache) {
  SimOptions options;
  options.latency = {2500.0, 10000.0, 1.0};  // a ~1000-token prompt costs 0.4 s cold
  options.output = {4, 8};
  RunningSim sim(options);
  net::HttpClient client;

  std::string system;
  while (system.size() < 4000) {
    system += "You are a careful assistant who answers briefly. ";
  }
  json messages = json::array({{{"role", "system"}, {"content", system}},
                               {{"role", "user"}, {"content", "Why is the sky blue?"}}});
  const auto start1 = steady_clock::now();
  const auto turn1 =
      json::parse(post(client, sim.url("/api/chat"), chat_body(messages, false)).body);
  const auto cold = elapsed_since(start1);
  const auto cached_after_turn1 = sim->stats().cached_prompt_tokens;

  messages.push_back(turn1["message"]);
  messages.push_back({{"role", "user"}, {"content", "And why are sunsets red?"}});
  const auto start2 = steady_clock::now();
  const auto turn2 =
      json::parse(post(client, sim.url("/api/chat"), chat_body(messages, false)).body);
  const auto warm = elapsed_since(start2);

  const auto prompt1 = turn1["prompt_eval_count"].get<std::uint64_t>();
  const auto prompt2 = turn2["prompt_eval_count"].get<std::uint64_t>();
  ASSERT_GT(prompt2, prompt1);
  const auto cached = sim->stats().cached_prompt_tokens - cached_after_turn1;
  EXPECT_GE(cached, prompt1) << "turn 1's prompt and reply are reused";
  EXPECT_LT(turn2["prompt_eval_duration"].get<std::int64_t>(),
            turn1["prompt_eval_duration"].get<std::int64_t>() / 10)
      << "only the new suffix is evaluated";
  EXPECT_GE(cold, milliseconds{350});
  EXPECT_LT(warm, cold / 2) << "cold " << cold.count() << " ms, warm " << warm.count() << " ms";

  const auto metrics = get(client, sim.url("/metrics")).body;
  EXPECT_NE(metrics.find("ollama_sim_prompt_tokens_cached_total " +
                         std::to_string(sim->stats().cached_prompt_tokens)),
            std::string::npos)
      << metrics;
}

TEST(OllamaSimBehaviour, GenerateContextContinuesTheConversationFromTheCache) {
  RunningSim sim;
  net::HttpClient client;
  const auto first =
      json::parse(post(client, sim.url("/api/generate"),
                       R"({"model":"llama3.2","prompt":"Tell me about the sea","stream":false})")
                      .body);
  const auto context = first["context"];
  ASSERT_TRUE(context.is_array());
  const auto cached_before = sim->stats().cached_prompt_tokens;
  const json next{
      {"model", "llama3.2"}, {"prompt", "And rivers?"}, {"context", context}, {"stream", false}};
  const auto second = json::parse(post(client, sim.url("/api/generate"), next.dump()).body);
  EXPECT_GT(second["prompt_eval_count"].get<std::size_t>(), context.size());
  // The slot holds everything but the last generated word (sampled, never decoded, as in
  // Ollama's runner), in whole 4-byte tokens: the next prompt starts with all of it.
  const std::string served = detokenize(context.get<Tokens>());
  const std::size_t last_piece = served.size() - served.rfind(' ');
  EXPECT_EQ(sim->stats().cached_prompt_tokens - cached_before,
            (served.size() - last_piece) / kBytesPerToken);
}

TEST(OllamaSimBehaviour, ConcurrentConversationsOnSeveralThreadsAllComplete) {
  SimOptions options = testing::fast_options();
  options.threads = 4;
  options.num_parallel = 2;
  options.queue_size = 64;
  RunningSim sim(options);
  constexpr int kSessions = 8;
  constexpr int kTurns = 4;
  std::vector<std::future<int>> sessions;
  for (int session = 0; session < kSessions; ++session) {
    sessions.push_back(std::async(std::launch::async, [&sim, session] {
      net::HttpClient client;
      json messages = json::array();
      int ok = 0;
      for (int turn = 0; turn < kTurns; ++turn) {
        messages.push_back(
            {{"role", "user"},
             {"content", "session " + std::to_string(session) + " turn " + std::to_string(turn)}});
        const auto response =
            post(client, sim.url("/api/chat"), chat_body(messages, /*stream=*/turn % 2 == 0));
        if (response.status != 200) {
          continue;
        }
        ++ok;
        std::string reply;
        for (const auto& record : ndjson_records(response.body)) {
          reply += record["message"]["content"].get<std::string>();
        }
        messages.push_back({{"role", "assistant"}, {"content", reply}});
      }
      return ok;
    }));
  }
  int completed = 0;
  for (auto& session : sessions) {
    ASSERT_EQ(session.wait_for(std::chrono::seconds{60}), std::future_status::ready);
    completed += session.get();
  }
  EXPECT_EQ(completed, kSessions * kTurns);
  // The sim frees the slot and counts the request just after the last byte is written, so the
  // client can be a moment ahead of the counters on a loaded machine.
  EXPECT_TRUE(wait_until([&] {
    const auto now = sim->stats();
    return now.slots_busy == 0 && now.queue_depth == 0 &&
           now.requests == static_cast<std::uint64_t>(kSessions * kTurns);
  })) << "slots busy "
      << sim->stats().slots_busy << ", queued " << sim->stats().queue_depth << ", requests "
      << sim->stats().requests;
  EXPECT_GT(sim->stats().cached_prompt_tokens, 0u);
}

TEST(OllamaSimBehaviour, QueueFullAnswers503WithOllamasMessage) {
  SimOptions options;
  options.num_parallel = 1;
  options.queue_size = 1;
  options.latency = {2000.0, 20.0, 1.0};  // 20 output tokens: 1 s per request
  options.output = {20, 20};
  RunningSim sim(options);
  const std::string body = R"({"model":"llama3.2","prompt":"hello","stream":false})";
  auto send_in_background = [&sim, &body] {
    return std::async(std::launch::async, [&sim, &body] {
      net::HttpClient client;
      return post(client, sim.url("/api/generate"), body).status;
    });
  };

  auto running = send_in_background();
  ASSERT_TRUE(wait_until([&] { return sim->stats().slots_busy == 1; })) << "first request runs";
  auto queued = send_in_background();
  ASSERT_TRUE(wait_until([&] { return sim->stats().queue_depth == 1; })) << "second one queues";

  net::HttpClient client;
  const auto refused = post(client, sim.url("/api/generate"), body);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(
      json::parse(refused.body),
      json::parse(
          R"({"error":"server busy, please try again.  maximum pending requests exceeded"})"));
  EXPECT_EQ(running.get(), 200);
  EXPECT_EQ(queued.get(), 200) << "the queued request gets the slot when the first finishes";
  EXPECT_EQ(sim->stats().rejected, 1u);
}

TEST(OllamaSimBehaviour, ClientLeavingMidStreamFreesTheSlotAtOnce) {
  SimOptions options;
  options.num_parallel = 1;
  options.latency = {2000.0, 20.0, 1.0};  // 200 tokens at 20/s: 10 s if nobody stopped it
  options.output = {200, 200};
  RunningSim sim(options);

  net::HttpClient leaving;
  int chunks = 0;
  try {
    leaving.send(
        {"POST", sim.url("/api/generate"), {}, R"({"model":"llama3.2","prompt":"a long story"})"},
        [&chunks](std::string_view) { return ++chunks < 2; });
  } catch (const net::TransportError&) {
    // Closing the connection from the callback may surface as a transport error; either is fine.
  }
  ASSERT_TRUE(wait_until([&] { return sim->stats().cancelled == 1; }, milliseconds{5000}))
      << "the generation notices the closed connection";
  EXPECT_TRUE(wait_until([&] { return sim->stats().slots_busy == 0; }, milliseconds{2000}))
      << "the cancelled generation gives its slot back";

  net::HttpClient next;
  const auto start = steady_clock::now();
  const auto response =
      post(next, sim.url("/api/generate"),
           R"({"model":"llama3.2","prompt":"quick","stream":false,"options":{"num_predict":1}})");
  EXPECT_EQ(response.status, 200);
  EXPECT_LT(elapsed_since(start), milliseconds{2000}) << "the slot was free, not still decoding";
}

TEST(OllamaSimBehaviour, IgnoreEosRunsRepliesToNumPredictOrUntilTheContextIsFull) {
  SimOptions options;
  options.latency.time_scale = 0.0;  // as fast as it can write
  options.output = {4, 8, true};     // a natural reply would stop after 4-8 tokens
  options.default_num_ctx = 1000;
  RunningSim sim(options);
  net::HttpClient client;

  const auto streamed =
      post(client, sim.url("/api/generate"),
           R"({"model":"llama3.2","prompt":"count","stream":true,"options":{"num_predict":2500}})");
  ASSERT_EQ(streamed.status, 200);
  const auto records = ndjson_records(streamed.body);
  ASSERT_EQ(records.size(), 2501u) << "one record per token, then the final one";
  EXPECT_EQ(records.back()["eval_count"], 2500) << "num_predict past the context is honoured";
  EXPECT_EQ(records.back()["done_reason"], "length");

  // num_predict -1: until the context is full (prompt tokens plus reply tokens = num_ctx).
  const auto whole = json::parse(
      post(client, sim.url("/api/generate"),
           R"({"model":"llama3.2","prompt":"count","stream":false,"options":{"num_predict":-1}})")
          .body);
  EXPECT_EQ(whole["prompt_eval_count"].get<int>() + whole["eval_count"].get<int>(), 1000);
  EXPECT_EQ(whole["done_reason"], "length");
  const auto larger = json::parse(post(client, sim.url("/api/generate"),
                                       R"({"model":"llama3.2","prompt":"count","stream":false,)"
                                       R"("options":{"num_ctx":2000}})")
                                      .body);
  EXPECT_EQ(larger["prompt_eval_count"].get<int>() + larger["eval_count"].get<int>(), 2000)
      << "the request's num_ctx bounds it";
}

TEST(OllamaSimBehaviour, Error500FaultAnswersInEachApisShape) {
  RunningSim sim;
  sim->set_fault({FaultMode::error500, 1.0, 0});
  net::HttpClient client;
  const auto native =
      post(client, sim.url("/api/generate"), R"({"model":"llama3.2","prompt":"x"})");
  EXPECT_EQ(native.status, 500);
  EXPECT_TRUE(json::parse(native.body)["error"].is_string());
  const auto openai = post(client, sim.url("/v1/chat/completions"),
                           R"({"model":"llama3.2","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(openai.status, 500);
  EXPECT_EQ(json::parse(openai.body)["error"]["type"], "api_error");
  EXPECT_EQ(get(client, sim.url("/api/tags")).status, 200) << "only inference is faulty";
}

TEST(OllamaSimBehaviour, CloseMidStreamFaultSetThroughTheAdminPath) {
  RunningSim sim;
  net::HttpClient admin;
  const auto set =
      post(admin, sim.url("/admin/fault"), R"({"mode":"close_mid_stream","after_tokens":2})");
  ASSERT_EQ(set.status, 200);
  EXPECT_EQ(json::parse(set.body)["mode"], "close_mid_stream");

  std::string received;
  bool broken = false;
  try {
    net::HttpClient client;
    const auto response =
        post(client, sim.url("/api/generate"), R"({"model":"llama3.2","prompt":"x"})",
             [&received](std::string_view chunk) {
               received += chunk;
               return true;
             });
    (void)response;
  } catch (const net::TransportError&) {
    broken = true;
  }
  EXPECT_TRUE(broken) << "the stream ends without its terminating chunk";
  const auto records = ndjson_records(received);
  EXPECT_EQ(records.size(), 2u);
  for (const auto& record : records) {
    EXPECT_EQ(record["done"], false);
  }

  ASSERT_EQ(post(admin, sim.url("/admin/fault"), R"({"mode":"none"})").status, 200);
  net::HttpClient client;
  EXPECT_EQ(post(client, sim.url("/api/generate"), R"({"model":"llama3.2","prompt":"x"})").status,
            200);
  EXPECT_EQ(post(admin, sim.url("/admin/fault"), R"({"mode":"explode"})").status, 400);
}

TEST(OllamaSimBehaviour, ErrorMidStreamFaultEndsTheStreamWithAnErrorRecord) {
  RunningSim sim;
  sim->set_fault({FaultMode::error_mid_stream, 1.0, 3});
  net::HttpClient client;
  const auto response = post(client, sim.url("/api/chat"),
                             R"({"model":"llama3.2","messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(response.status, 200);
  const auto records = ndjson_records(response.body);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_TRUE(records.back()["error"].is_string());
}

// A non-streamed request has no stream to break: the fault answers 500 with the error in each
// API's shape, and the emulator keeps serving (it used to free the error body twice and crash).
TEST(OllamaSimBehaviour, ErrorMidStreamFaultOnAWholeReplyAnswers500AndKeepsServing) {
  RunningSim sim;
  sim->set_fault({FaultMode::error_mid_stream, 1.0, 3});
  net::HttpClient client;
  const auto native =
      post(client, sim.url("/api/generate"), R"({"model":"llama3.2","prompt":"x","stream":false})");
  EXPECT_EQ(native.status, 500);
  EXPECT_EQ(json::parse(native.body)["error"], "simulated failure (fault error_mid_stream)");
  const auto openai =
      post(client, sim.url("/v1/chat/completions"),
           R"({"model":"llama3.2","messages":[{"role":"user","content":"x"}],"stream":false})");
  EXPECT_EQ(openai.status, 500);
  EXPECT_EQ(json::parse(openai.body)["error"]["type"], "api_error");

  sim->set_fault({FaultMode::none, 1.0, 0});
  const auto after =
      post(client, sim.url("/api/generate"), R"({"model":"llama3.2","prompt":"x","stream":false})");
  EXPECT_EQ(after.status, 200) << after.body;
}

TEST(OllamaSimBehaviour, SlowFaultMultipliesTheModelledTime) {
  RunningSim sim;
  net::HttpClient client;
  const std::string body = R"({"model":"llama3.2","prompt":"x","stream":false})";
  const auto normal = json::parse(post(client, sim.url("/api/generate"), body).body);
  sim->set_fault({FaultMode::slow, 5.0, 0});
  const auto slow = json::parse(post(client, sim.url("/api/generate"), body).body);
  EXPECT_EQ(slow["eval_count"], normal["eval_count"]);
  EXPECT_NEAR(slow["eval_duration"].get<double>(), normal["eval_duration"].get<double>() * 5.0,
              normal["eval_duration"].get<double>() * 0.01);
}

TEST(OllamaSimBehaviour, HangingRequestEndsWhenTheServerStops) {
  RunningSim sim;
  sim->set_fault({FaultMode::hang, 1.0, 0});
  auto hanging = std::async(std::launch::async, [&sim] {
    net::HttpClient client;
    try {
      return post(client, sim.url("/api/generate"), R"({"model":"llama3.2","prompt":"x"})").status;
    } catch (const net::TransportError&) {
      return 0;
    }
  });
  ASSERT_TRUE(wait_until([&] { return sim->stats().requests == 1; })) << "request arrived";
  EXPECT_EQ(hanging.wait_for(milliseconds{200}), std::future_status::timeout) << "it hangs";
  const auto start = steady_clock::now();
  sim->stop();
  EXPECT_LT(elapsed_since(start), milliseconds{5000});
  ASSERT_EQ(hanging.wait_for(std::chrono::seconds{10}), std::future_status::ready);
  EXPECT_NE(hanging.get(), 200);
}

}  // namespace
}  // namespace llmgw::sim
