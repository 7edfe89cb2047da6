#pragma once

// An in-process llm::ChatClient whose answers come from a function of the request, for tests whose
// replies depend on what is asked (a judge that prefers one candidate, a summariser that answers
// per file). Content is streamed to on_token in a few pieces, as a real provider would. Every
// request is recorded.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "llmgw/llm/chat_client.hpp"

namespace llmgw::fakes {

class FunctionChatClient : public llm::ChatClient {
 public:
  using Handler = std::function<llm::ChatResult(const llm::ChatRequest&)>;

  explicit FunctionChatClient(Handler handler) : handler_(std::move(handler)) {}

  llm::ChatResult chat(const llm::ChatRequest& request,
                       const llm::TokenCallback& on_token) override {
    requests_.push_back(request);
    auto result = handler_(request);
    if (on_token) {
      const auto& text = result.content;
      const std::size_t piece = text.size() / 3 + 1;
      for (std::size_t pos = 0; pos < text.size(); pos += piece) {
        ++tokens_streamed_;
        on_token(std::string_view{text}.substr(pos, piece));
      }
    }
    return result;
  }
  std::string describe() const override { return "function chat client"; }

  const std::vector<llm::ChatRequest>& requests() const noexcept { return requests_; }
  int tokens_streamed() const noexcept { return tokens_streamed_; }

  // The text of the last user message of a request.
  static const std::string& prompt_of(const llm::ChatRequest& request) {
    return request.messages.back().content;
  }
  static llm::ChatResult answer(std::string content) {
    llm::ChatResult result;
    result.content = std::move(content);
    result.finish_reason = "stop";
    result.prompt_tokens = 10;
    result.completion_tokens = 5;
    return result;
  }

 private:
  Handler handler_;
  std::vector<llm::ChatRequest> requests_;
  int tokens_streamed_ = 0;
};

}  // namespace llmgw::fakes
