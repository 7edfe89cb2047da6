#pragma once

// The usage line printed at the end of every review and summary, so that a user sees what a run
// cost: "Usage: llama3.2 via ollama, 1234 tokens in / 210 out, 12.3 s, 7 model calls."
// Token counts are the provider's when it reports them, else estimates (then marked "~").

#include <chrono>
#include <cstdint>
#include <string>

namespace llmgw::llm {

struct Usage {
  std::string model;
  std::string provider;  // "ollama", "openai"
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::chrono::milliseconds elapsed{0};
  int model_calls = 0;
  bool estimated = false;
};

std::string usage_line(const Usage& usage);

}  // namespace llmgw::llm
