#pragma once

// An in-process llm::ChatClient that answers from a script and records every request, for tests
// of code that drives a model (the review agent). A script entry is a reply or an exception to
// throw; past the end of the script it answers `fallback`.

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "llmgw/llm/chat_client.hpp"

namespace llmgw::fakes {

class ScriptedChatClient : public llm::ChatClient {
 public:
  using Step = std::function<llm::ChatResult(const llm::ChatRequest&)>;

  explicit ScriptedChatClient(bool native_tools = true) : native_tools_(native_tools) {}

  // A reply calling one tool.
  ScriptedChatClient& call(std::string name, nlohmann::json arguments, std::string thought = {}) {
    llm::ChatResult result;
    result.content = std::move(thought);
    result.tool_calls.push_back(
        {"call_" + std::to_string(steps_.size()), std::move(name), std::move(arguments)});
    result.finish_reason = "tool_calls";
    return reply(std::move(result));
  }
  // A plain text reply (text ReAct mode, or prose).
  ScriptedChatClient& text(std::string content) {
    llm::ChatResult result;
    result.content = std::move(content);
    result.finish_reason = "stop";
    return reply(std::move(result));
  }
  ScriptedChatClient& reply(llm::ChatResult result) {
    steps_.push_back([result = std::move(result)](const llm::ChatRequest&) { return result; });
    return *this;
  }
  ScriptedChatClient& step(Step step) {
    steps_.push_back(std::move(step));
    return *this;
  }
  void set_fallback(llm::ChatResult result) { fallback_ = std::move(result); }

  llm::ChatResult chat(const llm::ChatRequest& request, const llm::TokenCallback&) override {
    requests_.push_back(request);
    const auto index = requests_.size() - 1;
    return index < steps_.size() ? steps_[index](request) : fallback_;
  }
  bool supports_tools() const override { return native_tools_; }
  std::string describe() const override { return "scripted"; }

  const std::vector<llm::ChatRequest>& requests() const noexcept { return requests_; }

 private:
  bool native_tools_;
  std::vector<Step> steps_;
  std::vector<llm::ChatRequest> requests_;
  llm::ChatResult fallback_;
};

}  // namespace llmgw::fakes
