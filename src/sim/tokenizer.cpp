#include "llmgw/sim/tokenizer.hpp"

#include <algorithm>

namespace llmgw::sim {

std::size_t count_tokens(std::string_view text) noexcept {
  return std::max<std::size_t>(1, (text.size() + kBytesPerToken - 1) / kBytesPerToken);
}

Tokens whole_tokens(std::string_view text) {
  const std::size_t whole = text.size() - text.size() % kBytesPerToken;
  return whole == 0 ? Tokens{} : tokenize(text.substr(0, whole));
}

Tokens tokenize(std::string_view text) {
  Tokens tokens;
  tokens.reserve(count_tokens(text));
  for (std::size_t offset = 0; offset < text.size(); offset += kBytesPerToken) {
    TokenId id = 0;
    const std::size_t piece = std::min(kBytesPerToken, text.size() - offset);
    for (std::size_t i = 0; i < piece; ++i) {
      id |= static_cast<TokenId>(static_cast<unsigned char>(text[offset + i])) << (8 * i);
    }
    tokens.push_back(id);
  }
  if (tokens.empty()) {
    tokens.push_back(0);
  }
  return tokens;
}

std::string detokenize(const Tokens& tokens) {
  std::string text;
  text.reserve(tokens.size() * kBytesPerToken);
  for (const TokenId id : tokens) {
    for (std::size_t i = 0; i < kBytesPerToken; ++i) {
      const auto byte = static_cast<char>((id >> (8 * i)) & 0xFFu);
      if (byte == '\0') {
        break;  // the zero padding of a short last piece
      }
      text += byte;
    }
  }
  return text;
}

namespace {

void append_message(std::string& out, std::string_view role, std::string_view content) {
  out += "<|";
  out += role;
  out += "|>\n";
  out += content;
  out += '\n';
}

constexpr std::string_view kGenerationPrompt = "<|assistant|>\n";

}  // namespace

std::string render_chat(const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const auto& message : messages) {
    append_message(out, message.role, message.content);
  }
  out += kGenerationPrompt;
  return out;
}

std::string render_generate(std::string_view system, std::string_view prompt, bool raw) {
  if (raw) {
    return std::string{prompt};
  }
  std::string out;
  if (!system.empty()) {
    append_message(out, "system", system);
  }
  append_message(out, "user", prompt);
  out += kGenerationPrompt;
  return out;
}

std::size_t common_prefix(const Tokens& a, const Tokens& b) noexcept {
  const auto [end_a, end_b] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return static_cast<std::size_t>(end_a - a.begin());
}

}  // namespace llmgw::sim
