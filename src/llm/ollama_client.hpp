#pragma once

// Ollama's native chat API: POST /api/chat, NDJSON streaming, tool calls in message.tool_calls,
// token counts in the final record. Private to src/llm; made by make_chat_client.

#include "llm/provider_http.hpp"
#include "llmgw/llm/chat_client.hpp"

namespace llmgw::llm {

class OllamaClient final : public ChatClient {
 public:
  explicit OllamaClient(const ProviderConfig& config);

  ChatResult chat(const ChatRequest& request, const TokenCallback& on_token = {}) override;
  bool supports_tools() const override { return http_.config().native_tools; }
  std::string describe() const override { return http_.describe(); }

  // The /api/chat request body for `request` (exposed for tests).
  nlohmann::json request_body(const ChatRequest& request, bool stream) const;

 private:
  detail::ProviderHttp http_;
};

}  // namespace llmgw::llm
