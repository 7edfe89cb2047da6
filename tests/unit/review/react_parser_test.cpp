#include "llmgw/review/react_parser.hpp"

#include <gtest/gtest.h>

namespace llmgw::review {
namespace {

using Kind = ReactStep::Kind;

TEST(ReactParser, ParsesTheCanonicalFormat) {
  const auto step = parse_react(
      "Thought: I should look at the files first.\n"
      "Action: list_files\n"
      "Action Input: {}\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.thought, "I should look at the files first.");
  EXPECT_EQ(step.action, "list_files");
  EXPECT_EQ(step.input, nlohmann::json::object());
}

TEST(ReactParser, ReadsArgumentsFromAJsonFenceAndIgnoresAnInventedObservation) {
  const auto step = parse_react(
      "Thought: read the diff\n"
      "Action: get_file_diff\n"
      "Action Input:\n"
      "```json\n"
      "{\"path\": \"src/app.cpp\"}\n"
      "```\n"
      "Observation: the diff shows a new function\n"
      "Thought: now I know\n"
      "Final Answer: done\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.action, "get_file_diff");
  EXPECT_EQ(step.input, (nlohmann::json{{"path", "src/app.cpp"}}));
}

TEST(ReactParser, ToleratesAMissingThoughtBoldLabelsAndOddSpacing) {
  const auto step = parse_react(
      "  **Action:**   `read_file`  \n"
      "**Action Input:** {\"path\": \"a.py\", \"start\": 10, \"end\": 20}\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.action, "read_file");
  EXPECT_EQ(step.input.at("start"), 10);
  EXPECT_EQ(step.input.at("end"), 20);
  EXPECT_TRUE(step.thought.empty());
}

TEST(ReactParser, KeepsUnlabelledReasoningAsTheThought) {
  const auto step = parse_react(
      "Let me search for the call sites.\n\n"
      "action: search_code\n"
      "action input: {\"pattern\": \"parse_url(\"}\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.thought, "Let me search for the call sites.");
  EXPECT_EQ(step.input.at("pattern"), "parse_url(");
}

TEST(ReactParser, AcceptsLiteralNewlinesInsideJsonStringsAndTrailingCommas) {
  const auto step = parse_react(
      "Thought: comment on it\n"
      "Action: add_comment\n"
      "Action Input: {\"path\": \"x.cpp\", \"line\": 12, \"side\": \"RIGHT\",\n"
      "  \"body\": \"This leaks.\n\nUse a unique_ptr.\", \"severity\": \"high\",}\n"
      "I hope this helps!\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.input.at("body"), "This leaks.\n\nUse a unique_ptr.");
  EXPECT_EQ(step.input.at("severity"), "high");
}

TEST(ReactParser, BracesInsideJsonStringsDoNotEndTheObject) {
  const auto step = parse_react(
      "Action: add_comment\n"
      "Action Input: {\"path\": \"a.c\", \"line\": 3, \"body\": \"use `if (x) { y(); }` and a "
      "\\\"quote\\\"\"}"
      " trailing prose }\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.input.at("body"), "use `if (x) { y(); }` and a \"quote\"");
}

TEST(ReactParser, FinalAnswerFinishesAndKeepsItsMultilineText) {
  const auto step = parse_react(
      "Thought: I have reviewed everything.\n"
      "Final Answer: The PR adds retries.\n"
      "- risk: backoff is unbounded\n");
  ASSERT_EQ(step.kind, Kind::final_answer) << step.error;
  EXPECT_EQ(step.final_answer, "The PR adds retries.\n- risk: backoff is unbounded");
  EXPECT_EQ(step.thought, "I have reviewed everything.");
}

TEST(ReactParser, TheFirstDecisionWinsWhenTheModelRunsAhead) {
  const auto step = parse_react(
      "Thought: a\nAction: list_files\nAction Input: {}\nObservation: [..]\n"
      "Thought: b\nAction: read_file\nAction Input: {\"path\": \"z\"}\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.action, "list_files");
  EXPECT_EQ(step.input, nlohmann::json::object());
}

TEST(ReactParser, AcceptsArgumentsInParenthesesAfterTheToolName) {
  const auto step = parse_react("Action: read_file({\"path\": \"lib/a.rb\"})\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.action, "read_file");
  EXPECT_EQ(step.input.at("path"), "lib/a.rb");
}

TEST(ReactParser, AcceptsActionAndInputOnOneLine) {
  const auto step =
      parse_react("Thought: go\nAction: search_code Action Input: {\"pattern\": \"TODO\"}");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.action, "search_code");
  EXPECT_EQ(step.input.at("pattern"), "TODO");
}

TEST(ReactParser, TakesAFencedBlockUnderABareActionAsItsInput) {
  const auto step = parse_react("Action: get_file_diff\n```json\n{\"path\": \"b.go\"}\n```\n");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.input.at("path"), "b.go");
}

TEST(ReactParser, ABareActionWithoutInputHasNoArguments) {
  const auto step = parse_react("Thought: start\nAction: list_files");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.action, "list_files");
  EXPECT_EQ(step.input, nlohmann::json::object());
}

TEST(ReactParser, UnderstandsABareJsonToolCall) {
  auto step =
      parse_react("```json\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"m.rs\"}}\n```");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.action, "read_file");
  EXPECT_EQ(step.input.at("path"), "m.rs");

  step = parse_react(R"({"action": "search_code", "action_input": "{\"pattern\": \"x\"}"})");
  ASSERT_EQ(step.kind, Kind::action) << step.error;
  EXPECT_EQ(step.input.at("pattern"), "x");
}

TEST(ReactParser, ExplainsProseWithoutAnActionToTheModel) {
  const auto step = parse_react("I think the PR looks fine overall.");
  ASSERT_EQ(step.kind, Kind::invalid);
  EXPECT_NE(step.error.find("Final Answer:"), std::string::npos) << step.error;
  EXPECT_EQ(step.thought, "I think the PR looks fine overall.");
}

TEST(ReactParser, ExplainsBrokenJsonToTheModel) {
  auto step = parse_react("Action: read_file\nAction Input: {\"path\": \"a.c\", \"start\": }\n");
  ASSERT_EQ(step.kind, Kind::invalid);
  EXPECT_NE(step.error.find("read_file"), std::string::npos) << step.error;
  EXPECT_NE(step.error.find("not valid JSON"), std::string::npos) << step.error;

  step = parse_react("Action: read_file\nAction Input: {\"path\": \"a.c\"");
  ASSERT_EQ(step.kind, Kind::invalid);
  EXPECT_NE(step.error.find("incomplete"), std::string::npos) << step.error;

  step = parse_react("Action: read_file\nAction Input: the file src/a.c please\n");
  ASSERT_EQ(step.kind, Kind::invalid);
  EXPECT_NE(step.error.find("JSON object"), std::string::npos) << step.error;
}

TEST(ReactParser, RejectsAnEmptyAnswerAndAnActionWithoutAName) {
  EXPECT_EQ(parse_react("   \n ").kind, Kind::invalid);
  const auto step = parse_react("Thought: hmm\nAction: \nAction Input: {}");
  ASSERT_EQ(step.kind, Kind::invalid);
  EXPECT_NE(step.error.find("name one tool"), std::string::npos) << step.error;
}

TEST(ReactParser, ExtractsTheFirstParsableObject) {
  EXPECT_EQ(extract_json_object("noise {not json} then {\"a\": [1, 2,]} tail"),
            (nlohmann::json{{"a", {1, 2}}}));
  EXPECT_FALSE(extract_json_object("no object here").has_value());
}

TEST(ReactParser, InstructionsNameEveryToolAndTheFormat) {
  const std::vector<llm::ToolSpec> tools{
      {"list_files", "List the PR's files", {{"type", "object"}}},
      {"finish", "End the review", {{"type", "object"}, {"required", {"summary"}}}}};
  const auto text = react_instructions(tools);
  EXPECT_NE(text.find("- list_files: List the PR's files"), std::string::npos) << text;
  EXPECT_NE(text.find("one of [list_files, finish]"), std::string::npos) << text;
  EXPECT_NE(text.find("Action Input:"), std::string::npos);
  EXPECT_NE(text.find("Final Answer:"), std::string::npos);
  // The instructions' own example must parse as a final answer.
  EXPECT_EQ(parse_react("Thought: why you are done\nFinal Answer: ok").kind, Kind::final_answer);
}

}  // namespace
}  // namespace llmgw::review
