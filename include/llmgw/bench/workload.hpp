#pragma once

// The multi-turn chat workload of `llmgw bench` (the seed's benchmark.py, done properly).
//
// S sessions each hold a conversation of T turns against /api/chat with "stream": true. Turn k
// sends the whole history: the optional shared system prompt, every earlier user message and
// every earlier reply, then a new user message. So the prompt of turn k + 1 starts with exactly
// the text turn k left in the node's KV cache, and a node that served the session before can skip
// most of the prefill. Sessions carry their id in the session header unless send_session_id is
// false (round-robin). Everything a session sends is a pure function of (seed, session, turn),
// except the replies, which are whatever the server answered.
//
// Measured per request: time to first byte of the body (TTFT: the first streamed chunk), latency
// to the final record, token counts and prompt_eval_duration from Ollama's final record, and the
// node (X-Gateway-Node) and route kind (X-Gateway-Route) the gateway reports.
//
// Threads: one thread per session (fine for the few hundred sessions this is meant for); a
// semaphore bounds the requests in flight when a concurrency limit is set.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/net/http_types.hpp"

namespace llmgw::net {
class HttpClient;
}

namespace llmgw::bench {

struct WorkloadOptions {
  std::size_t sessions = 16;
  std::size_t turns = 8;
  std::chrono::milliseconds think_time{50};  // between a reply's end and the next turn
  std::size_t concurrency = 0;               // requests in flight at most; 0 = no limit
  std::size_t system_prompt_tokens = 0;      // shared by every session; 0 = no system message
  std::size_t user_message_tokens = 200;     // each turn's new user message (4 bytes per token)
  std::size_t max_output_tokens = 64;        // sent as options.num_predict
  std::string model = "llama3.2";
  std::string session_header = "X-Session-ID";
  std::chrono::milliseconds request_timeout{120'000};  // idle time allowed between bytes
  // Sessions spread over these models: session i asks for models[i % size] on every turn (the
  // multi-model workload). Empty: every session asks for `model`.
  std::vector<std::string> models;
  // The wire protocol: "ollama" POSTs /api/chat (NDJSON); "openai" POSTs /v1/chat/completions
  // with "stream": true and stream_options.include_usage (SSE), for llama.cpp's llama-server, vLLM
  // or any OpenAI-compatible server, and reads the cached prompt tokens they report.
  std::string api = "ollama";
  // Send the session id as the body's top-level "prompt_cache_key" (as OpenAI clients do), in
  // place of the session header.
  bool session_id_in_body = false;
};

inline constexpr const char* kApiOllama = "ollama";
inline constexpr const char* kApiOpenAi = "openai";

// One chat request as the client saw it. Times in seconds; start_s is since the run started.
struct RequestRecord {
  std::size_t session = 0;
  std::size_t turn = 0;  // 0-based
  double start_s = 0.0;
  double ttft_s = 0.0;
  double latency_s = 0.0;
  std::uint64_t prompt_tokens = 0;  // prompt_eval_count of the final record
  std::uint64_t output_tokens = 0;  // eval_count of the final record
  double prompt_eval_duration_s = 0.0;
  // Prompt tokens the server says it took from its cache: OpenAI-compatible
  // usage.prompt_tokens_details.cached_tokens (vLLM, llama-server, ollama-sim), else llama.cpp's
  // timings.cache_n; nullopt when the answer said nothing (Ollama's native API never does).
  std::optional<std::uint64_t> cached_prompt_tokens;
  std::string model;  // the model the request asked for
  std::string node;   // X-Gateway-Node, empty without a gateway
  std::string route;  // X-Gateway-Route
  int status = 0;     // HTTP status, 0 on a transport failure
  bool ok = false;    // a 200 stream that ended with a done record
  std::string error;  // why not ok
  // The gateway's refusals (docs/DESIGN.md §2.2): X-Gateway-Reject-Reason (queue_full, max_wait,
  // no_eligible_node, ...) and Retry-After in seconds (-1: none sent).
  std::string reject_reason;
  double retry_after_s = -1.0;
};

struct WorkloadRun {
  std::vector<RequestRecord> requests;  // in completion order
  double wall_time_s = 0.0;
  // A batch flood: seconds from its start until it was told to stop (when the chats beside it
  // ended); the requests then in flight still complete, and wall_time_s runs to the last of them.
  double window_s = 0.0;
};

// Session ids of a seed: "bench-<seed>-<i>-<16 hex digits>"; the same seed gives the same ids.
std::vector<std::string> session_ids(std::uint64_t seed, std::size_t count);

// Deterministic filler text of exactly `tokens` × 4 bytes, different for every (seed, stream).
std::string filler_text(std::uint64_t seed, std::uint64_t stream, std::size_t tokens);

// Counts finished requests across threads, for a progress display.
struct ProgressCounter {
  std::atomic<std::size_t> completed{0};
  std::atomic<std::size_t> failed{0};
};

// One streamed chat request (POST base_url + "/api/chat", or "/v1/chat/completions" when
// `openai`) with `body` and `headers`, measured as above; start_s counts from `run_started`,
// session and turn are left 0. `reply` (optional) receives the streamed content. Never throws: a
// transport failure is a record with status 0.
RequestRecord send_chat(net::HttpClient& client, const std::string& base_url,
                        net::HttpHeaders headers, std::string body,
                        std::chrono::steady_clock::time_point run_started,
                        std::string* reply = nullptr, bool openai = false);

// Runs the workload against base_url ("http://host:port"), blocking until every session finished
// its turns (a failed turn is recorded and the session goes on with the history it has).
WorkloadRun run_workload(const std::string& base_url, const WorkloadOptions& options,
                         std::uint64_t seed, bool send_session_id,
                         ProgressCounter* progress = nullptr);

}  // namespace llmgw::bench
