#pragma once

// The review agent: a ReAct loop (Thought -> Action -> Observation) over ReviewTools.
//
// With a provider that has native tool calling, the tools are offered as functions and each tool
// call is answered with a tool message. Otherwise the tools are described in the system prompt
// and every reply is parsed with review::parse_react (text format), observations going back as
// user messages.
//
// Bounds, so that a confused model cannot run up a bill or loop forever:
//   - max_steps model calls; at the cap (or when the token budget is spent, or after too many
//     repeated calls) the model is told to finish, with only `finish` offered, once. If it still
//     does not, the review ends with a summary saying so.
//   - repeated-call detection: the same tool with the same arguments gets an error observation
//     instead of the same answer again; max_repeated_calls of those force the finish.
//   - token budget: prompt + completion tokens summed over every call (reported by the provider,
//     else estimated).
//   - context: with context_tokens set, old observations are elided before a call that would not
//     fit.
// Provider trouble is handled in the loop: Groq's tool_use_failed is fed back to the model as an
// error; a context-too-long answer makes the agent elide old observations and try again; a model
// that refuses tools (llm::ToolsUnsupportedError) switches the run to the text format, unless
// native tools were forced.
//
// Only a finish call or a "Final Answer:" ends a review. A reply without a native tool call is
// parsed for a call written in its content (a ReAct block, a bare JSON call, <tool_call> tags);
// prose, and any reply cut at the length limit, gets a nudge instead, and three such answers in a
// row force the finish. Prose is never taken as the summary: a run that never finishes ends with
// a summary that says it stopped early.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/llm/chat_client.hpp"
#include "llmgw/review/tools.hpp"

namespace llmgw::review {

struct AgentOptions {
  std::string model;  // empty: the client's default
  int max_steps = 24;
  std::int64_t token_budget = 200'000;
  // The model's context window (0: unknown). Before each call the oldest observations are elided
  // until the estimated prompt fits in 3/4 of it: Ollama silently drops the start of a prompt
  // that is too long (the instructions), instead of answering an error.
  std::int64_t context_tokens = 0;
  int max_repeated_calls = 3;
  std::optional<std::string> session_id;  // X-Session-ID for a gateway
  // The repository's own instructions (.llmgw-review.yaml), added to the system prompt.
  std::string instructions;
  std::optional<double> temperature = 0.2;
  // nullopt (auto): follow ChatClient::supports_tools() and fall back to the text format when the
  // model refuses tools; true/false forces native or text mode.
  std::optional<bool> native_tools;
};

struct AgentResult {
  std::string summary;
  std::vector<DraftComment> comments;
  int steps = 0;                 // model calls made
  bool forced_finish = false;    // a bound was hit
  std::string stop_reason;       // "finished", "step limit", "token budget", "repeated calls", ...
  std::int64_t tokens_used = 0;  // prompt_tokens + completion_tokens
  std::int64_t prompt_tokens = 0;  // reported by the provider, else estimated
  std::int64_t completion_tokens = 0;
  int rejected_comments = 0;  // add_comment calls refused (off the diff, ...)
  int tool_errors = 0;        // every error observation
};

class ReviewAgent {
 public:
  ReviewAgent(llm::ChatClient& client, ReviewTools& tools, AgentOptions options = {});

  // Runs the loop to the end. Throws only what the ChatClient throws that the loop cannot handle
  // (transport errors, authentication failures, ...).
  AgentResult run();

 private:
  llm::ChatClient& client_;
  ReviewTools& tools_;
  AgentOptions options_;
};

}  // namespace llmgw::review
