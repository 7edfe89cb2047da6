#pragma once

// The emulator's deterministic tokenizer and chat template.
//
// One token per 4 bytes of rendered text (at least one token), so counts are repeatable and easy to
// predict in tests: a 10-byte prompt is 3 tokens. A token's id is its 4 bytes packed little-endian
// (a short last piece is zero-padded), so equal ids mean equal text and the KV cache can compare
// sequences id by id.
//
// The chat template renders each message as "<|role|>\ncontent\n" and ends with the generation
// prompt "<|assistant|>\n". A reply is appended to that prompt verbatim, so the next turn's prompt
// (history + reply + new user message) starts with exactly the text the previous turn left in its
// KV slot. Worked example:
//   turn 1 prompt:  "<|user|>\nhi\n<|assistant|>\n"          slot after turn 1: prompt + "Hello."
//   turn 2 prompt:  "<|user|>\nhi\n<|assistant|>\nHello.\n<|user|>\nmore\n<|assistant|>\n"
// Turn 2 shares every complete 4-byte piece of turn 1's slot contents, so only the tail is
// evaluated.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::sim {

using TokenId = std::uint32_t;
using Tokens = std::vector<TokenId>;

inline constexpr std::size_t kBytesPerToken = 4;

// Tokens of `text`; an empty text still yields one token (as a BOS token would).
Tokens tokenize(std::string_view text);

// The tokens of `text`'s whole 4-byte pieces, without a short last piece (none for less than 4
// bytes). What a KV slot keeps of served text: a real tokenizer gives a conversation's next prompt
// the same tokens for the text they share, but a short last piece here would differ from the
// longer text's piece at the same place and break the prefix one token early.
Tokens whole_tokens(std::string_view text);

// The text of `tokens` (the inverse of tokenize for text without NUL bytes): lets /api/generate
// accept the deprecated "context" a previous response returned.
std::string detokenize(const Tokens& tokens);

// Number of tokens tokenize(text) returns, without building them.
std::size_t count_tokens(std::string_view text) noexcept;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
};

// "<|role|>\ncontent\n" per message, then "<|assistant|>\n".
std::string render_chat(const std::vector<ChatMessage>& messages);

// The prompt /api/generate evaluates: the template around `prompt` (with an optional system
// message), or `prompt` unchanged when `raw`.
std::string render_generate(std::string_view system, std::string_view prompt, bool raw);

// Length of the longest common prefix of two token sequences.
std::size_t common_prefix(const Tokens& a, const Tokens& b) noexcept;

}  // namespace llmgw::sim
