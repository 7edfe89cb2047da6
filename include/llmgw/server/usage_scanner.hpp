#pragma once

// Reads token usage out of a response body as it streams past, without buffering the stream:
// only the current line is kept (bounded), and only lines that can carry usage are parsed.
//   Ollama NDJSON / JSON: the record with "done": true -> prompt_eval_count, eval_count,
//                          prompt_eval_duration (ns)
//   OpenAI SSE / JSON:     "usage": {prompt_tokens, completion_tokens}
// Not thread-safe; one scanner per response.

#include <cstdint>
#include <string>
#include <string_view>

namespace llmgw::server {

struct Usage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  double prompt_eval_seconds = 0.0;
  bool seen = false;  // a usage record was found
};

class UsageScanner {
 public:
  // Lines longer than this are skipped (a huge non-streamed body is not worth holding).
  static constexpr std::size_t kMaxLineBytes = 256 * 1024;

  // Whether answers to requests for `path` (no query) carry token usage: the generation and
  // embedding endpoints of the Ollama and OpenAI APIs and Anthropic's Messages. The others
  // (/api/show, /api/tags, ...) are relayed without scanning their bodies.
  static bool reports_usage(std::string_view path) noexcept;

  void feed(std::string_view bytes);
  // Call at the end of the body: a last line without '\n' is examined too.
  void finish();
  const Usage& usage() const noexcept { return usage_; }

 private:
  void examine(std::string_view line);

  std::string line_;
  bool skipping_ = false;  // the current line overflowed kMaxLineBytes
  Usage usage_;
};

}  // namespace llmgw::server
