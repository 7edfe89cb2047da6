#pragma once

// The OpenAI-compatible chat API (Groq, OpenAI, Ollama's /v1): POST {base}/chat/completions, SSE
// streaming for plain text, a whole response when tools are offered (streamed tool-call fragments
// differ between providers). Private to src/llm; made by make_chat_client.

#include "llm/provider_http.hpp"
#include "llmgw/llm/chat_client.hpp"

namespace llmgw::llm {

class OpenAiClient final : public ChatClient {
 public:
  explicit OpenAiClient(const ProviderConfig& config);

  ChatResult chat(const ChatRequest& request, const TokenCallback& on_token = {}) override;
  bool supports_tools() const override { return http_.config().native_tools; }
  std::string describe() const override { return http_.describe(); }

  // The request body (exposed for tests). With json_object_fallback the schema is asked for as
  // `{"type": "json_object"}` plus an instruction, for models without structured outputs.
  nlohmann::json request_body(const ChatRequest& request, bool stream,
                              bool json_object_fallback) const;

 private:
  ChatResult send(const ChatRequest& request, const TokenCallback& on_token,
                  bool json_object_fallback);

  detail::ProviderHttp http_;
  bool schema_unsupported_ = false;  // learnt from a 400; later calls use the fallback at once
};

}  // namespace llmgw::llm
