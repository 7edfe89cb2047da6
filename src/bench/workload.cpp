#include "llmgw/bench/workload.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdlib>
#include <latch>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <semaphore>
#include <string_view>
#include <thread>

#include "llmgw/net/http_client.hpp"

namespace llmgw::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kBytesPerToken = 4;  // what ollama-sim's tokenizer counts; see README

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// splitmix64: spreads (seed, stream) pairs into independent generator seeds.
std::uint64_t mix(std::uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27U)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31U);
}

std::uint64_t user_message_stream(std::size_t session, std::size_t turn) {
  return (static_cast<std::uint64_t>(session + 1) << 20U) | static_cast<std::uint64_t>(turn);
}

// Reads a chat stream: Ollama's NDJSON (content pieces, the final record's counters, or an error
// record), or an OpenAI-compatible SSE stream ("data: {chunk}" lines, a usage chunk, "data:
// [DONE]"), with the cache counters vLLM and llama.cpp's llama-server report.
class ChatStreamReader {
 public:
  explicit ChatStreamReader(bool openai = false) : openai_(openai) {}

  // Returns false to stop reading (an unparsable line).
  bool feed(std::string_view bytes) {
    pending_.append(bytes);
    std::size_t start = 0;
    for (std::size_t end = pending_.find('\n'); end != std::string::npos;
         end = pending_.find('\n', start)) {
      std::string_view line(pending_.data() + start, end - start);
      start = end + 1;
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      if (!line.empty() && !consume(line)) {
        return false;
      }
    }
    pending_.erase(0, start);
    return true;
  }

  // A stream may end without a trailing newline.
  void finish() {
    if (!pending_.empty()) {
      consume(pending_);
      pending_.clear();
    }
  }

  const std::string& reply() const { return reply_; }
  bool done() const { return done_; }
  const std::string& error() const { return error_; }
  std::uint64_t prompt_tokens() const { return prompt_tokens_; }
  std::uint64_t output_tokens() const { return output_tokens_; }
  double prompt_eval_duration_s() const { return prompt_eval_duration_s_; }
  std::optional<std::uint64_t> cached_prompt_tokens() const { return cached_prompt_tokens_; }

 private:
  bool consume(std::string_view line) {
    if (openai_) {
      // SSE: only data lines carry chunks; "event:", "id:" and comments are skipped.
      constexpr std::string_view kData = "data:";
      if (!line.starts_with(kData)) {
        return true;
      }
      line.remove_prefix(kData.size());
      while (!line.empty() && line.front() == ' ') {
        line.remove_prefix(1);
      }
      if (line == "[DONE]") {
        done_ = true;
        return true;
      }
    }
    const auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object()) {
      error_ = "unparsable stream record";
      return false;
    }
    if (const auto it = record.find("error"); it != record.end()) {
      error_ = it->is_string() ? it->get<std::string>() : it->dump();
      return true;
    }
    if (openai_) {
      consume_openai(record);
      return true;
    }
    if (const auto message = record.find("message");
        message != record.end() && message->is_object()) {
      const auto content = message->find("content");
      if (content != message->end() && content->is_string()) {
        reply_ += content->get_ref<const std::string&>();
      }
    }
    if (record.value("done", false)) {
      done_ = true;
      prompt_tokens_ = record.value("prompt_eval_count", std::uint64_t{0});
      output_tokens_ = record.value("eval_count", std::uint64_t{0});
      prompt_eval_duration_s_ =
          static_cast<double>(record.value("prompt_eval_duration", std::uint64_t{0})) / 1e9;
    }
    return true;
  }

  // One chunk of /v1/chat/completions: choices[0].delta.content; `usage` (the last chunk with
  // stream_options.include_usage) with prompt_tokens_details.cached_tokens (vLLM, newer
  // llama-server); llama-server's `timings` (prompt_n evaluated, cache_n reused, prompt_ms).
  void consume_openai(const nlohmann::json& chunk) {
    if (const auto choices = chunk.find("choices");
        choices != chunk.end() && choices->is_array() && !choices->empty()) {
      const auto& delta = (*choices)[0].value("delta", nlohmann::json::object());
      if (const auto content = delta.find("content");
          content != delta.end() && content->is_string()) {
        reply_ += content->get_ref<const std::string&>();
      }
    }
    const auto count = [](const nlohmann::json& object,
                          std::string_view key) -> std::optional<std::uint64_t> {
      const auto it = object.find(key);
      if (it == object.end() || !it->is_number_integer() || it->get<std::int64_t>() < 0) {
        return std::nullopt;
      }
      return it->get<std::uint64_t>();
    };
    if (const auto timings = chunk.find("timings");
        timings != chunk.end() && timings->is_object()) {
      const auto evaluated = count(*timings, "prompt_n");
      if (const auto cached = count(*timings, "cache_n")) {
        cached_prompt_tokens_ = cached;
        prompt_tokens_ = *cached + evaluated.value_or(0);
      }
      if (const auto ms = timings->find("prompt_ms"); ms != timings->end() && ms->is_number()) {
        prompt_eval_duration_s_ = ms->get<double>() / 1e3;
      }
      output_tokens_ = count(*timings, "predicted_n").value_or(output_tokens_);
    }
    if (const auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
      prompt_tokens_ = count(*usage, "prompt_tokens").value_or(prompt_tokens_);
      output_tokens_ = count(*usage, "completion_tokens").value_or(output_tokens_);
      const auto details = usage->find("prompt_tokens_details");
      if (details != usage->end() && details->is_object()) {
        if (const auto cached = count(*details, "cached_tokens")) {
          cached_prompt_tokens_ = cached;
        }
      }
    }
  }

  bool openai_ = false;
  std::string pending_;
  std::string reply_;
  std::string error_;
  bool done_ = false;
  std::uint64_t prompt_tokens_ = 0;
  std::uint64_t output_tokens_ = 0;
  double prompt_eval_duration_s_ = 0.0;
  std::optional<std::uint64_t> cached_prompt_tokens_;
};

struct SharedRun {
  const std::string& base_url;
  const WorkloadOptions& options;
  std::uint64_t seed;
  bool send_session_id;
  ProgressCounter* progress;
  Clock::time_point started;
  std::optional<std::counting_semaphore<>> in_flight_limit;
  std::mutex records_mutex;
  std::vector<RequestRecord> records;
};

struct TurnResult {
  RequestRecord record;
  std::string reply;
};

TurnResult send_turn(net::HttpClient& client, SharedRun& run, const std::string& session_id,
                     const nlohmann::json& messages, std::size_t session, std::size_t turn) {
  const WorkloadOptions& options = run.options;
  const bool openai = options.api == kApiOpenAi;
  const std::string& model =
      options.models.empty() ? options.model : options.models[session % options.models.size()];
  net::HttpHeaders headers;
  if (run.send_session_id && !options.session_id_in_body) {
    headers.push_back({options.session_header, session_id});
  }
  nlohmann::json body{{"model", model}, {"messages", messages}, {"stream", true}};
  if (openai) {
    body["max_tokens"] = options.max_output_tokens;
    body["stream_options"] = {{"include_usage", true}};
  } else {
    body["options"] = {{"num_predict", options.max_output_tokens}};
  }
  if (run.send_session_id && options.session_id_in_body) {
    body["prompt_cache_key"] = session_id;
  }
  TurnResult result;
  result.record = send_chat(client, run.base_url, std::move(headers), body.dump(), run.started,
                            &result.reply, openai);
  result.record.session = session;
  result.record.turn = turn;
  result.record.model = model;
  return result;
}

void run_session(SharedRun& run, const std::string& session_id, std::size_t session,
                 const std::string& system_prompt, std::latch& start) {
  const WorkloadOptions& options = run.options;
  net::ClientOptions client_options;
  client_options.read_timeout = options.request_timeout;
  net::HttpClient client(client_options);
  nlohmann::json messages = nlohmann::json::array();
  if (!system_prompt.empty()) {
    messages.push_back({{"role", "system"}, {"content", system_prompt}});
  }
  start.arrive_and_wait();
  for (std::size_t turn = 0; turn < options.turns; ++turn) {
    messages.push_back({{"role", "user"},
                        {"content", filler_text(run.seed, user_message_stream(session, turn),
                                                options.user_message_tokens)}});
    if (run.in_flight_limit) {
      run.in_flight_limit->acquire();
    }
    TurnResult result = send_turn(client, run, session_id, messages, session, turn);
    if (run.in_flight_limit) {
      run.in_flight_limit->release();
    }
    // The reply joins the history even when the turn failed midway: that is what a chat client
    // that shows partial replies would send next.
    messages.push_back({{"role", "assistant"}, {"content", std::move(result.reply)}});
    if (run.progress != nullptr) {
      run.progress->completed.fetch_add(1, std::memory_order_relaxed);
      if (!result.record.ok) {
        run.progress->failed.fetch_add(1, std::memory_order_relaxed);
      }
    }
    {
      const std::lock_guard lock(run.records_mutex);
      run.records.push_back(std::move(result.record));
    }
    if (turn + 1 < options.turns && options.think_time.count() > 0) {
      std::this_thread::sleep_for(options.think_time);
    }
  }
}

}  // namespace

RequestRecord send_chat(net::HttpClient& client, const std::string& base_url,
                        net::HttpHeaders headers, std::string body, Clock::time_point run_started,
                        std::string* reply, bool openai) {
  net::ClientRequest request;
  request.method = "POST";
  request.url = base_url + (openai ? "/v1/chat/completions" : "/api/chat");
  request.headers = std::move(headers);
  request.headers.push_back({"Content-Type", "application/json"});
  request.body = std::move(body);

  RequestRecord record;
  ChatStreamReader reader(openai);
  std::optional<Clock::time_point> first_byte;
  const auto sent = Clock::now();
  record.start_s = seconds_between(run_started, sent);
  try {
    const auto response = client.send(request, [&](std::string_view bytes) {
      if (!first_byte && !bytes.empty()) {
        first_byte = Clock::now();
      }
      return reader.feed(bytes);
    });
    reader.finish();
    record.status = response.status;
    record.node = std::string(response.header("X-Gateway-Node").value_or(""));
    record.route = std::string(response.header("X-Gateway-Route").value_or(""));
    record.reject_reason = std::string(response.header("X-Gateway-Reject-Reason").value_or(""));
    if (const auto retry_after = response.header("Retry-After")) {
      record.retry_after_s = std::strtod(std::string(*retry_after).c_str(), nullptr);
    }
  } catch (const std::exception& e) {
    record.error = e.what();
  }
  const auto ended = Clock::now();
  record.latency_s = seconds_between(sent, ended);
  record.ttft_s = seconds_between(sent, first_byte.value_or(ended));
  record.prompt_tokens = reader.prompt_tokens();
  record.output_tokens = reader.output_tokens();
  record.prompt_eval_duration_s = reader.prompt_eval_duration_s();
  record.cached_prompt_tokens = reader.cached_prompt_tokens();
  if (record.error.empty()) {
    if (!reader.error().empty()) {
      record.error = reader.error();
    } else if (record.status != 200) {
      record.error = fmt::format("HTTP {}", record.status);
    } else if (!reader.done()) {
      record.error = "stream ended without a done record";
    }
  }
  record.ok = record.error.empty();
  if (reply != nullptr) {
    *reply = reader.reply();
  }
  return record;
}

std::vector<std::string> session_ids(std::uint64_t seed, std::size_t count) {
  std::mt19937_64 rng(mix(seed));
  std::vector<std::string> ids;
  ids.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(fmt::format("bench-{}-{}-{:016x}", seed, i, rng()));
  }
  return ids;
}

std::string filler_text(std::uint64_t seed, std::uint64_t stream, std::size_t tokens) {
  static constexpr std::array<std::string_view, 24> kWords = {
      "the",    "gateway", "keeps",  "each",  "session", "on",    "one",     "node",
      "so",     "its",     "cache",  "stays", "warm",    "while", "prefill", "costs",
      "tokens", "and",     "decode", "time",  "across",  "turns", "of",      "chat"};
  const std::size_t bytes = tokens * kBytesPerToken;
  std::mt19937_64 rng(mix(mix(seed) ^ stream));
  std::string text;
  text.reserve(bytes + 16);
  while (text.size() < bytes) {
    text += kWords[rng() % kWords.size()];
    text += ' ';
  }
  text.resize(bytes);
  return text;
}

WorkloadRun run_workload(const std::string& base_url, const WorkloadOptions& options,
                         std::uint64_t seed, bool send_session_id, ProgressCounter* progress) {
  SharedRun run{base_url, options, seed, send_session_id, progress, {}, {}, {}, {}};
  if (options.concurrency > 0) {
    run.in_flight_limit.emplace(static_cast<std::ptrdiff_t>(options.concurrency));
  }
  run.records.reserve(options.sessions * options.turns);
  const auto ids = session_ids(seed, options.sessions);
  const std::string system_prompt =
      options.system_prompt_tokens > 0 ? filler_text(seed, 0, options.system_prompt_tokens) : "";

  // Every thread exists before the clock starts, so thread creation is not part of the run.
  std::latch start(static_cast<std::ptrdiff_t>(options.sessions) + 1);
  std::vector<std::jthread> threads;
  threads.reserve(options.sessions);
  for (std::size_t session = 0; session < options.sessions; ++session) {
    threads.emplace_back([&run, &ids, &system_prompt, &start, session] {
      run_session(run, ids[session], session, system_prompt, start);
    });
  }
  run.started = Clock::now();
  start.count_down();
  for (auto& thread : threads) {
    thread.join();
  }
  WorkloadRun result;
  result.wall_time_s = seconds_between(run.started, Clock::now());
  result.requests = std::move(run.records);
  return result;
}

}  // namespace llmgw::bench
