#include "llmgw/review/agent.hpp"

#include <gtest/gtest.h>

#include "fakes/sample_pr.hpp"
#include "fakes/scripted_chat.hpp"

namespace llmgw::review {
namespace {

using nlohmann::json;

class ReviewAgentTest : public ::testing::Test {
 protected:
  ReviewTools& tools() {
    if (!tools_) {
      tools_.emplace(pr_, [this](const std::string& path) -> std::optional<std::string> {
        const auto it = files_.find(path);
        return it == files_.end() ? std::nullopt : std::optional{it->second};
      });
    }
    return *tools_;
  }

  // The observation the agent sent back for the model's n-th call (native mode: a tool message).
  static std::string observation_before(const fakes::ScriptedChatClient& chat,
                                        std::size_t request) {
    const auto& messages = chat.requests().at(request).messages;
    return messages.back().content;
  }

  github::PullRequest pr_ = fakes::sample_pull_request();
  std::map<std::string, std::string> files_ = fakes::sample_head_files();
  std::optional<ReviewTools> tools_;
};

AgentOptions options_with(const std::function<void(AgentOptions&)>& set) {
  AgentOptions options;
  set(options);
  return options;
}

TEST_F(ReviewAgentTest, ModelCorrectsACommentOffTheDiffAfterTheErrorObservation) {
  fakes::ScriptedChatClient chat;
  chat.call("get_file_diff", {{"path", "src/cache.cpp"}}, "Thought: the cache changed")
      .call("add_comment", {{"path", "src/cache.cpp"}, {"line", 8}, {"body", "needs a lock"}})
      .call("add_comment", {{"path", "src/cache.cpp"},
                            {"line", 17},
                            {"side", "RIGHT"},
                            {"body", "put() writes entries_ without the lock get() takes."},
                            {"severity", "error"}})
      .call("finish", {{"summary", "Adds a size counter but drops the lock in put()."}});
  const auto result = ReviewAgent{chat, tools()}.run();

  EXPECT_EQ(result.stop_reason, "finished");
  EXPECT_FALSE(result.forced_finish);
  EXPECT_EQ(result.summary, "Adds a size counter but drops the lock in put().");
  ASSERT_EQ(result.comments.size(), 1u);
  EXPECT_EQ(result.comments[0].line, 17);
  EXPECT_EQ(result.rejected_comments, 1);
  EXPECT_EQ(result.steps, 4);
  // The model was told why line 8 failed and where it may comment.
  const auto refusal = observation_before(chat, 2);
  EXPECT_NE(refusal.find("not part of the diff"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("RIGHT 14-19"), std::string::npos);
  // Native tool calling: every tool is offered, answers go back as tool messages with the call id.
  EXPECT_EQ(chat.requests()[0].tools.size(), 6u);
  EXPECT_EQ(chat.requests()[2].messages.back().role, "tool");
  EXPECT_EQ(chat.requests()[2].messages.back().tool_call_id, "call_1");
}

TEST_F(ReviewAgentTest, TextReactModeWhenTheProviderHasNoTools) {
  fakes::ScriptedChatClient chat{false};
  chat.text(
          "Thought: look at the header\nAction: get_file_diff\nAction Input: {\"path\": "
          "\"src/cache.hpp\"}")
      .text(
          "**Action:** add_comment\n**Action Input:**\n```json\n{\"path\": \"src/cache.hpp\", "
          "\"line\": 4, \"body\": \"Forward declaration only?\"}\n```")
      .text("Thought: done\nFinal Answer: A header and a counter.");
  const auto result = ReviewAgent{chat, tools()}.run();
  EXPECT_EQ(result.summary, "A header and a counter.");
  ASSERT_EQ(result.comments.size(), 1u);
  EXPECT_EQ(result.comments[0].path, "src/cache.hpp");
  EXPECT_TRUE(chat.requests()[0].tools.empty());
  EXPECT_NE(chat.requests()[0].messages[0].content.find("Action Input:"), std::string::npos);
  EXPECT_EQ(observation_before(chat, 1).rfind("Observation: Diff of src/cache.hpp", 0), 0u)
      << observation_before(chat, 1);
}

TEST_F(ReviewAgentTest, RepeatedCallsAreRefusedAndThenForceTheFinish) {
  fakes::ScriptedChatClient chat;
  for (int i = 0; i < 4; ++i) {
    chat.call("list_files", json::object());
  }
  chat.call("finish", {{"summary", "Gave up looping."}});
  const auto result =
      ReviewAgent{chat, tools(), options_with([](auto& o) { o.max_repeated_calls = 3; })}.run();
  EXPECT_TRUE(result.forced_finish);
  EXPECT_EQ(result.stop_reason, "repeated calls");
  EXPECT_EQ(result.summary, "Gave up looping.");
  EXPECT_NE(observation_before(chat, 2).find("already called list_files"), std::string::npos);
  // Once forced, only finish is offered.
  ASSERT_EQ(chat.requests().back().tools.size(), 1u);
  EXPECT_EQ(chat.requests().back().tools[0].name, "finish");
}

TEST_F(ReviewAgentTest, StepCapForcesFinishAndEndsEvenIfTheModelIgnoresIt) {
  fakes::ScriptedChatClient chat;
  for (int line = 1; line < 50; ++line) {
    chat.call("read_file", {{"path", "src/cache.cpp"}, {"start_line", line}, {"end_line", line}});
  }
  const auto result =
      ReviewAgent{chat, tools(), options_with([](auto& o) { o.max_steps = 5; })}.run();
  EXPECT_EQ(chat.requests().size(), 5u);
  EXPECT_TRUE(result.forced_finish);
  EXPECT_EQ(result.stop_reason, "step limit");
  EXPECT_NE(result.summary.find("stopped early (step limit)"), std::string::npos) << result.summary;
}

TEST_F(ReviewAgentTest, TokenBudgetForcesTheFinish) {
  fakes::ScriptedChatClient chat;
  llm::ChatResult expensive;
  expensive.tool_calls.push_back({"c1", "list_files", json::object()});
  expensive.prompt_tokens = 900;
  expensive.completion_tokens = 200;
  chat.reply(expensive).call("finish", {{"summary", "short"}});
  const auto result =
      ReviewAgent{chat, tools(), options_with([](auto& o) { o.token_budget = 1000; })}.run();
  EXPECT_EQ(result.stop_reason, "token budget");
  EXPECT_EQ(result.summary, "short");
  EXPECT_GE(result.tokens_used, 1100);
}

TEST_F(ReviewAgentTest, ToolUseFailedIsFedBackToTheModel) {
  fakes::ScriptedChatClient chat;
  chat.step([](const llm::ChatRequest&) -> llm::ChatResult {
        throw llm::ToolUseFailedError(400, "Failed to call a function", "groq: HTTP 400",
                                      "<function=add_comment>{bad json</function>");
      })
      .call("finish", {{"summary", "ok"}});
  const auto result = ReviewAgent{chat, tools()}.run();
  EXPECT_EQ(result.summary, "ok");
  EXPECT_EQ(result.tool_errors, 1);
  const auto& retry = chat.requests()[1].messages;
  EXPECT_NE(retry.back().content.find("could not parse your tool call (Failed to call a function)"),
            std::string::npos);
  EXPECT_EQ(retry[retry.size() - 2].content, "<function=add_comment>{bad json</function>");
}

TEST_F(ReviewAgentTest, ContextTooLongElidesOldObservations) {
  fakes::ScriptedChatClient chat;
  chat.call("read_file", {{"path", "src/cache.cpp"}})
      .step([](const llm::ChatRequest&) -> llm::ChatResult {
        throw llm::ContextTooLongError(413, "too long", "HTTP 413");
      })
      .call("finish", {{"summary", "done"}});
  const auto result = ReviewAgent{chat, tools()}.run();
  EXPECT_EQ(result.summary, "done");
  const auto& before = chat.requests()[1].messages.back().content;
  const auto& after = chat.requests()[2].messages.back().content;
  EXPECT_NE(before.find("lines 1-21"), std::string::npos);
  EXPECT_EQ(after, "[observation elided to save context]");
}

TEST_F(ReviewAgentTest, OldObservationsAreElidedToFitTheContextWindow) {
  std::string big(6000, 'x');
  for (int i = 0; i < 200; ++i) {
    big += "\nline " + std::to_string(i);
  }
  files_["src/cache.cpp"] = big;
  fakes::ScriptedChatClient chat;
  chat.call("read_file", {{"path", "src/cache.cpp"}, {"start_line", 1}, {"end_line", 100}})
      .call("read_file", {{"path", "src/cache.cpp"}, {"start_line", 100}, {"end_line", 200}})
      .call("finish", {{"summary", "done"}});
  const auto result =
      ReviewAgent{chat, tools(), options_with([](auto& o) { o.context_tokens = 4000; })}.run();
  EXPECT_EQ(result.summary, "done");
  // The first read (about 2,500 tokens) no longer fits once the second one is added.
  const auto& last = chat.requests()[2].messages;
  EXPECT_EQ(last[last.size() - 3].content, "[observation elided to save context]");
  EXPECT_NE(last.back().content.find("lines 100-"), std::string::npos);
}

// Prose is never posted as the review: only finish (or a Final Answer) ends it.
TEST_F(ReviewAgentTest, ProseIsNudgedAndNeverTakenAsTheSummary) {
  fakes::ScriptedChatClient chat;
  chat.text("This PR looks fine.")
      .text("Really, it is fine.")
      .call("finish", {{"summary", "Adds a size counter."}});
  const auto result = ReviewAgent{chat, tools()}.run();
  EXPECT_EQ(result.summary, "Adds a size counter.");
  EXPECT_NE(chat.requests()[1].messages.back().content.find("Use one of the tools"),
            std::string::npos);
}

TEST_F(ReviewAgentTest, AModelThatOnlyWritesProseEndsWithoutPostingIt) {
  fakes::ScriptedChatClient chat;
  chat.set_fallback([] {
    llm::ChatResult prose;
    prose.content = "Let me think about the cache some more.";
    prose.finish_reason = "stop";
    return prose;
  }());
  const auto result =
      ReviewAgent{chat, tools(), options_with([](auto& o) { o.max_steps = 8; })}.run();
  EXPECT_TRUE(result.forced_finish);
  EXPECT_EQ(result.summary.find("think about the cache"), std::string::npos) << result.summary;
  EXPECT_NE(result.summary.find("stopped early"), std::string::npos) << result.summary;
  EXPECT_LE(chat.requests().size(), 8u);
}

// Small local models write the call in the content instead of a native tool call.
TEST_F(ReviewAgentTest, ToolCallsWrittenInTheContentAreRun) {
  fakes::ScriptedChatClient chat;
  chat.text(R"(<tool_call>{"name": "add_comment", "arguments": {"path": "src/cache.hpp",
            "line": 4, "body": "Forward declaration only?"}}</tool_call>)")
      .text("Thought: done.\nAction: finish\nAction Input: {\"summary\": \"A header.\"}");
  const auto result = ReviewAgent{chat, tools()}.run();
  ASSERT_EQ(result.comments.size(), 1u);
  EXPECT_EQ(result.comments[0].line, 4);
  EXPECT_EQ(result.summary, "A header.");
  EXPECT_NE(observation_before(chat, 1).find("Comment added"), std::string::npos)
      << observation_before(chat, 1);
}

// A reply cut at the length limit is not an answer, even when it starts like one.
TEST_F(ReviewAgentTest, AReplyCutAtTheLengthLimitIsNotTheSummary) {
  fakes::ScriptedChatClient chat{false};
  llm::ChatResult cut;
  cut.content = "Thought: done\nFinal Answer: The change to put() is";
  cut.finish_reason = "length";
  chat.reply(cut).text("Final Answer: put() lost its lock.");
  const auto result = ReviewAgent{chat, tools()}.run();
  EXPECT_EQ(result.summary, "put() lost its lock.");
  EXPECT_NE(observation_before(chat, 1).find("cut off"), std::string::npos)
      << observation_before(chat, 1);
}

TEST_F(ReviewAgentTest, TextModeProseWhenForcedIsNotTheSummary) {
  fakes::ScriptedChatClient chat{false};
  chat.set_fallback([] {
    llm::ChatResult prose;
    prose.content = "I am still reading the files.";
    return prose;
  }());
  const auto result =
      ReviewAgent{chat, tools(), options_with([](auto& o) { o.max_steps = 4; })}.run();
  EXPECT_EQ(result.summary.find("still reading"), std::string::npos) << result.summary;
}

// A model without tool calling answers the first request with an error; the agent carries on in
// the text format instead of failing the review.
TEST_F(ReviewAgentTest, FallsBackToTextReactWhenTheModelRefusesTools) {
  fakes::ScriptedChatClient chat;
  chat.step([](const llm::ChatRequest&) -> llm::ChatResult {
        throw llm::ToolsUnsupportedError(400, "llama2 does not support tools", "HTTP 400");
      })
      .text(
          "Action: add_comment\nAction Input: {\"path\": \"src/cache.hpp\", \"line\": 4, "
          "\"body\": \"Forward declaration only?\"}")
      .text("Final Answer: A header.");
  const auto result = ReviewAgent{chat, tools()}.run();
  EXPECT_EQ(result.summary, "A header.");
  ASSERT_EQ(result.comments.size(), 1u);
  ASSERT_EQ(chat.requests().size(), 3u);
  EXPECT_FALSE(chat.requests()[0].tools.empty());
  EXPECT_TRUE(chat.requests()[1].tools.empty());
  EXPECT_NE(chat.requests()[1].messages[0].content.find("Action Input:"), std::string::npos);
}

TEST_F(ReviewAgentTest, SessionIdAndModelAreSentWithEveryCall) {
  fakes::ScriptedChatClient chat;
  chat.call("finish", {{"summary", "s"}});
  ReviewAgent{chat, tools(), options_with([](auto& o) {
                o.model = "m1";
                o.session_id = "acme/widgets#42";
              })}
      .run();
  EXPECT_EQ(chat.requests()[0].model, "m1");
  EXPECT_EQ(chat.requests()[0].session_id, "acme/widgets#42");
}

}  // namespace
}  // namespace llmgw::review
