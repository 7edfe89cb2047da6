#include "llmgw/llm/usage.hpp"

#include <fmt/format.h>

namespace llmgw::llm {

std::string usage_line(const Usage& usage) {
  const char* about = usage.estimated ? "~" : "";
  return fmt::format("Usage: {} via {}, {}{} tokens in / {}{} out, {:.1f} s, {} model call{}.",
                     usage.model.empty() ? std::string{"(default model)"} : usage.model,
                     usage.provider, about, usage.prompt_tokens, about, usage.completion_tokens,
                     static_cast<double>(usage.elapsed.count()) / 1000.0, usage.model_calls,
                     usage.model_calls == 1 ? "" : "s");
}

}  // namespace llmgw::llm
