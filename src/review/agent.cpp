#include "llmgw/review/agent.hpp"

#include <spdlog/spdlog.h>

#include <map>

#include "llmgw/llm/token_budget.hpp"
#include "llmgw/review/react_parser.hpp"

namespace llmgw::review {
namespace {

using nlohmann::json;

constexpr std::string_view kElided = "[observation elided to save context]";
// Answers in a row without an action before the model is told to finish.
constexpr int kMaxNudges = 3;

std::string system_prompt(bool native, int max_comments) {
  std::string prompt =
      "You are a careful senior software engineer reviewing a GitHub pull request. Use the tools "
      "to look at the diffs of the files most likely to hold problems, read surrounding code when "
      "you need it, then add inline comments only for concrete problems: bugs, security issues, "
      "missing error handling, races, resource leaks, misleading names or documentation. Do not "
      "comment on formatting or praise the code. A comment must sit on a line of the diff: use "
      "the SIDE and LINE numbers that get_file_diff shows. Write at most " +
      std::to_string(max_comments) +
      " comments, each concrete and short, saying what is wrong and how to fix it. When you are "
      "done, call finish with a summary: what the pull request does and its main risks.\n";
  if (!native) {
    prompt += "\n" + react_instructions(ReviewTools::specs()) +
              "To end the review you may call the finish tool or give the summary as the Final "
              "Answer.\n";
  }
  return prompt;
}

std::string describe_call(const std::string& name, const json& arguments) {
  std::string out = name;
  if (arguments.is_object()) {
    if (const auto it = arguments.find("path"); it != arguments.end() && it->is_string()) {
      out += " " + it->get<std::string>();
      if (const auto line = arguments.find("line"); line != arguments.end()) {
        out += ":" + (line->is_string() ? line->get<std::string>() : line->dump());
      }
    } else if (const auto pattern = arguments.find("pattern"); pattern != arguments.end()) {
      out += " " + pattern->dump();
    }
  }
  return out;
}

class Loop {
 public:
  Loop(llm::ChatClient& client, ReviewTools& tools, const AgentOptions& options)
      : client_(client),
        tools_(tools),
        options_(options),
        native_(options.native_tools.value_or(client.supports_tools())),
        may_fall_back_(!options.native_tools.has_value()) {}

  AgentResult run() {
    messages_.push_back(llm::Message::system(prompt()));
    messages_.push_back(llm::Message::user(
        tools_.overview() +
        "\nReview this pull request. Start by looking at the diffs of the riskiest files."));
    while (!tools_.finished() && !stopped_) {
      if (!forcing_) {
        check_bounds();
      }
      step();
    }
    return finish_result();
  }

 private:
  void check_bounds() {
    if (result_.steps >= options_.max_steps - 1) {
      force("step limit");
    } else if (result_.tokens_used >= options_.token_budget) {
      force("token budget");
    } else if (repeats_ >= options_.max_repeated_calls) {
      force("repeated calls");
    }
  }

  void force(std::string reason) {
    forcing_ = true;
    result_.forced_finish = true;
    result_.stop_reason = std::move(reason);
    spdlog::info("review agent: {} reached; asking the model to finish", result_.stop_reason);
    messages_.push_back(llm::Message::user(
        "Stop now (" + result_.stop_reason + "). " +
        (native_ ? std::string{"Call finish with your overall summary; no other tool is available."}
                 : std::string{"Answer with 'Final Answer: <your overall summary>'."})));
  }

  void step() {
    fit_context();
    llm::ChatRequest request;
    request.model = options_.model;
    request.messages = messages_;
    request.temperature = options_.temperature;
    request.session_id = options_.session_id;
    if (native_) {
      for (auto& spec : ReviewTools::specs()) {
        if (!forcing_ || spec.name == "finish") {
          request.tools.push_back(std::move(spec));
        }
      }
    }
    const bool last_chance = forcing_;
    ++result_.steps;
    llm::ChatResult reply;
    try {
      reply = client_.chat(request);
    } catch (const llm::ToolUseFailedError& e) {
      count_tokens({});
      ++result_.tool_errors;
      messages_.push_back(
          llm::Message::assistant(llm::truncate_to_tokens(e.failed_generation(), 500)));
      messages_.push_back(llm::Message::user(
          "Error: the provider could not parse your tool call (" + e.provider_message() +
          "). Call exactly one tool, with its arguments as a valid JSON object."));
      stop_if(last_chance, "the model could not produce a valid finish call");
      return;
    } catch (const llm::ToolsUnsupportedError& e) {
      if (!native_ || !may_fall_back_) {
        throw;
      }
      switch_to_text(e.provider_message());
      return;
    } catch (const llm::ContextTooLongError&) {
      if (!elide_oldest_observation()) {
        stopped_ = true;
        if (result_.stop_reason.empty()) {
          result_.stop_reason = "context too long";
        }
        result_.forced_finish = true;
      }
      return;
    }
    count_tokens(reply);
    if (native_) {
      handle_native(reply);
    } else {
      handle_text(reply);
    }
    stop_if(last_chance && !tools_.finished(), "the model did not finish when asked");
  }

  std::string prompt() const {
    auto text = system_prompt(native_, tools_.max_comments());
    if (!options_.instructions.empty()) {
      text += "\nThe repository's own review instructions (follow them):\n" +
              options_.instructions + "\n";
    }
    return text;
  }

  // The model has no tool calling: describe the tools in the prompt and read the text format.
  void switch_to_text(const std::string& why) {
    spdlog::warn(
        "review agent: the model does not support tool calling ({}); continuing in the text "
        "format (ReAct)",
        why);
    native_ = false;
    messages_.front() = llm::Message::system(prompt());
  }

  void stop_if(bool condition, const char* why) {
    if (condition) {
      stopped_ = true;
      spdlog::warn("review agent: {}", why);
    }
  }

  void handle_native(const llm::ChatResult& reply) {
    if (reply.tool_calls.empty()) {
      // Small local models often write the call into the content (a ReAct block, a bare JSON
      // call, Hermes' <tool_call> tags) instead of a native tool call.
      messages_.push_back(llm::Message::assistant(reply.content));
      handle_content(reply);
      return;
    }
    nudges_ = 0;
    messages_.push_back(llm::Message::assistant(reply.content, reply.tool_calls));
    for (const auto& call : reply.tool_calls) {
      const auto observation = tools_.finished()
                                   ? std::string{"Error: the review is already finished."}
                                   : execute(call.name, call.arguments);
      messages_.push_back(llm::Message::tool(call.id, call.name, observation));
    }
  }

  void handle_text(const llm::ChatResult& reply) {
    messages_.push_back(llm::Message::assistant(reply.content));
    handle_content(reply);
  }

  // A reply without a native tool call; the assistant message is already in messages_. Only a
  // finish call or a Final Answer ends the review: other text is never taken as the summary.
  void handle_content(const llm::ChatResult& reply) {
    if (reply.finish_reason == "length") {
      // Cut at the output limit: whatever it started to say is not a whole answer.
      nudge(
          "Your answer was cut off at the length limit. Answer again, shorter: one tool call, "
          "or a short final summary.");
      return;
    }
    const auto parsed = parse_react(reply.content);
    switch (parsed.kind) {
      case ReactStep::Kind::action:
        nudges_ = 0;
        messages_.push_back(
            llm::Message::user("Observation: " + execute(parsed.action, parsed.input)));
        return;
      case ReactStep::Kind::final_answer:
        if (tools_.call("finish", json{{"summary", parsed.final_answer}}).finished) {
          return;
        }
        nudge("Error: the final answer was empty. Give the overall summary of the review.");
        return;
      case ReactStep::Kind::invalid:
        break;
    }
    ++result_.tool_errors;
    if (native_) {
      nudge("Use one of the tools to continue the review, or call finish with your summary.");
    } else {
      nudge("Observation: Error: " + parsed.error);
    }
  }

  // Asks again; after max_nudges answers in a row without an action, only finish is offered.
  void nudge(std::string text) {
    messages_.push_back(llm::Message::user(std::move(text)));
    if (++nudges_ >= kMaxNudges && !forcing_) {
      force("no tool call in " + std::to_string(nudges_) + " answers");
    }
  }

  std::string execute(const std::string& name, const json& arguments) {
    if (forcing_ && name != "finish") {
      ++result_.tool_errors;
      return "Error: only finish is available now.";
    }
    const auto key = name + " " + arguments.dump();
    if (name != "finish" && ++seen_calls_[key] > 1) {
      ++repeats_;
      ++result_.tool_errors;
      spdlog::info("review agent: repeated call {}", describe_call(name, arguments));
      return "Error: you already called " + name +
             " with these arguments and the answer has not changed. Use what you learned, try "
             "something else, or call finish.";
    }
    spdlog::info("review agent step {}: {}", result_.steps, describe_call(name, arguments));
    auto outcome = tools_.call(name, arguments);
    if (!outcome.ok) {
      ++result_.tool_errors;
    }
    return std::move(outcome.observation);
  }

  // Called before the reply is appended, so messages_ is the prompt just sent.
  void count_tokens(const llm::ChatResult& reply) {
    const bool reported = reply.prompt_tokens > 0 || reply.completion_tokens > 0;
    const auto in = reported ? reply.prompt_tokens : estimated_prompt_tokens();
    const auto out = reported ? reply.completion_tokens : llm::estimate_tokens(reply.content);
    result_.prompt_tokens += in;
    result_.completion_tokens += out;
    result_.tokens_used += in + out;
  }

  std::int64_t estimated_prompt_tokens() const {
    std::int64_t total = 0;
    for (const auto& message : messages_) {
      total += llm::estimate_tokens(message.content);
      for (const auto& call : message.tool_calls) {
        total += llm::estimate_tokens(call.arguments.dump());
      }
    }
    return total;
  }

  // A quarter of the window stays free for the tool definitions and the reply.
  void fit_context() {
    if (options_.context_tokens <= 0) {
      return;
    }
    const auto budget = options_.context_tokens * 3 / 4;
    while (estimated_prompt_tokens() > budget && elide_oldest_observation()) {
    }
  }

  // Replaces the oldest observation that is still whole; false when none is left.
  bool elide_oldest_observation() {
    for (std::size_t i = 2; i < messages_.size(); ++i) {
      auto& message = messages_[i];
      const bool observation =
          message.role == "tool" ||
          (message.role == "user" && message.content.rfind("Observation: ", 0) == 0);
      if (observation && message.content != kElided) {
        message.content = std::string{kElided};
        return true;
      }
    }
    return false;
  }

  AgentResult finish_result() {
    result_.comments = tools_.comments();
    result_.rejected_comments = tools_.rejected_comments();
    if (tools_.finished()) {
      result_.summary = tools_.summary();
      if (result_.stop_reason.empty()) {
        result_.stop_reason = "finished";
      }
    } else {
      // The model's last words are not a final answer (often a half-finished thought or a
      // reply cut at the length limit): they are not posted.
      result_.summary = "The automated review stopped early (" + result_.stop_reason + ") after " +
                        std::to_string(result_.steps) + " model calls.";
    }
    return result_;
  }

  llm::ChatClient& client_;
  ReviewTools& tools_;
  const AgentOptions& options_;
  bool native_;
  const bool may_fall_back_;  // auto mode: switch to text when the model refuses tools
  std::vector<llm::Message> messages_;
  AgentResult result_;
  std::map<std::string, int> seen_calls_;
  int repeats_ = 0;
  int nudges_ = 0;
  bool forcing_ = false;
  bool stopped_ = false;
};

}  // namespace

ReviewAgent::ReviewAgent(llm::ChatClient& client, ReviewTools& tools, AgentOptions options)
    : client_(client), tools_(tools), options_(std::move(options)) {}

AgentResult ReviewAgent::run() {
  return Loop{client_, tools_, options_}.run();
}

}  // namespace llmgw::review
