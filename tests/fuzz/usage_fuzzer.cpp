// Fuzz target: a response body -> server::UsageScanner, fed in pieces cut where the fuzzer says, as
// the relay loop feeds it whatever each read returned. The contract: how the body is cut into
// reads never changes the usage found.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "llmgw/server/usage_scanner.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider provider(data, size);
  // The cut points come from the end of the input, the body is the rest.
  const auto cuts = provider.ConsumeIntegralInRange<unsigned>(0, 16);
  std::vector<std::size_t> piece_sizes;
  for (unsigned i = 0; i < cuts; ++i) {
    piece_sizes.push_back(provider.ConsumeIntegralInRange<std::size_t>(0, 512));
  }
  const std::string body = provider.ConsumeRemainingBytesAsString();

  llmgw::server::UsageScanner whole;
  whole.feed(body);
  whole.finish();

  llmgw::server::UsageScanner pieces;
  std::string_view rest = body;
  for (const auto piece : piece_sizes) {
    const auto take = std::min(piece, rest.size());
    pieces.feed(rest.substr(0, take));
    rest.remove_prefix(take);
  }
  pieces.feed(rest);
  pieces.finish();

  const auto& a = whole.usage();
  const auto& b = pieces.usage();
  if (a.seen != b.seen || a.prompt_tokens != b.prompt_tokens ||
      a.completion_tokens != b.completion_tokens ||
      a.prompt_eval_seconds != b.prompt_eval_seconds) {
    __builtin_trap();
  }
  return 0;
}
