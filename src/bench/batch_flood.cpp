#include "llmgw/bench/batch_flood.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "llmgw/net/http_client.hpp"

namespace llmgw::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kInstruction =
    "Summarise the following document in detail: its purpose, every decision it records and "
    "every open question.";

// The filler streams of the chats are (session + 1) << 20 | turn (< 2^40); the flood's sit above.
std::uint64_t document_stream(std::size_t client, std::size_t request) {
  return (std::uint64_t{1} << 62U) | (static_cast<std::uint64_t>(client) << 24U) |
         static_cast<std::uint64_t>(request);
}

}  // namespace

struct BatchFlood::State {
  std::string base_url;
  BatchFloodOptions options;
  std::uint64_t seed = 0;
  bool send_priority = true;
  ProgressCounter* progress = nullptr;
  Clock::time_point started;

  std::mutex mutex;
  std::condition_variable stopping_changed;
  bool stopping = false;
  std::vector<RequestRecord> records;
  Clock::time_point last_answer;
  std::vector<std::jthread> threads;

  void run_client(std::size_t client);
};

void BatchFlood::State::run_client(std::size_t client) {
  net::ClientOptions client_options;
  client_options.read_timeout = options.request_timeout;
  net::HttpClient http(client_options);
  for (std::size_t request = 0;; ++request) {
    {
      const std::lock_guard lock(mutex);
      if (stopping) {
        return;
      }
    }
    net::HttpHeaders headers;
    if (send_priority) {
      headers.push_back({options.priority_header, "batch"});
    }
    const nlohmann::json messages =
        nlohmann::json::array({{{"role", "system"}, {"content", kInstruction}},
                               {{"role", "user"},
                                {"content", filler_text(seed, document_stream(client, request),
                                                        options.prompt_tokens)}}});
    std::string body = nlohmann::json{{"model", options.model},
                                      {"messages", messages},
                                      {"stream", true},
                                      {"options", {{"num_predict", options.output_tokens}}}}
                           .dump();
    RequestRecord record = send_chat(http, base_url, std::move(headers), std::move(body), started);
    record.session = client;
    record.turn = request;
    const bool refused = record.status == 429;
    const auto retry_after = std::chrono::duration<double>(std::max(record.retry_after_s, 0.0));
    if (progress != nullptr) {
      progress->completed.fetch_add(1, std::memory_order_relaxed);
      if (!record.ok && !refused) {
        progress->failed.fetch_add(1, std::memory_order_relaxed);
      }
    }
    std::unique_lock lock(mutex);
    last_answer = std::max(last_answer, Clock::now());
    records.push_back(std::move(record));
    if (refused) {
      // An honest 429 says when to come back: wait that long (or until the flood stops).
      stopping_changed.wait_for(lock, retry_after, [this] { return stopping; });
    }
  }
}

BatchFlood::BatchFlood(std::string base_url, BatchFloodOptions options, std::uint64_t seed,
                       bool send_priority, ProgressCounter* progress)
    : state_(std::make_unique<State>()) {
  State& state = *state_;
  state.base_url = std::move(base_url);
  state.options = std::move(options);
  state.seed = seed;
  state.send_priority = send_priority;
  state.progress = progress;
  state.started = Clock::now();
  state.last_answer = state.started;
  state.threads.reserve(state.options.clients);
  for (std::size_t client = 0; client < state.options.clients; ++client) {
    state.threads.emplace_back([&state, client] { state.run_client(client); });
  }
}

BatchFlood::~BatchFlood() {
  if (state_) {
    stop();
  }
}

WorkloadRun BatchFlood::stop() {
  State& state = *state_;
  const auto told = Clock::now();
  {
    const std::lock_guard lock(state.mutex);
    state.stopping = true;
  }
  state.stopping_changed.notify_all();
  state.threads.clear();  // joins
  WorkloadRun run;
  const std::lock_guard lock(state.mutex);
  run.requests = std::move(state.records);
  state.records.clear();
  run.wall_time_s = std::chrono::duration<double>(state.last_answer - state.started).count();
  run.window_s = std::chrono::duration<double>(told - state.started).count();
  return run;
}

}  // namespace llmgw::bench
