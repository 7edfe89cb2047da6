#include "llmgw/eval/judge.hpp"

#include <gtest/gtest.h>

#include "fakes/function_chat_client.hpp"

namespace llmgw::eval {
namespace {

using fakes::FunctionChatClient;

Rubric two_criteria() {
  return parse_rubric("criteria: [{name: accuracy}, {name: clarity}]");
}

EvalCase pair(std::string a, std::string b) {
  EvalCase item;
  item.id = "pair";
  item.context = "PR context";
  item.candidate_a = std::move(a);
  item.candidate_b = std::move(b);
  return item;
}

// Which candidate text the judge was shown first ("<candidate_A>" block).
std::string shown_first(const llm::ChatRequest& request) {
  const auto& prompt = FunctionChatClient::prompt_of(request);
  const auto start = prompt.find("<candidate_A>\n") + 14;
  return prompt.substr(start, prompt.find("\n</candidate_A>") - start);
}

TEST(Judge, PairwiseAsksInBothOrdersAndAJudgeWithPositionBiasGivesATie) {
  // Always prefers whatever is shown first: the swap exposes it.
  FunctionChatClient judge{[](const llm::ChatRequest&) {
    return FunctionChatClient::answer(R"({"reason": "first is best", "winner": "A"})");
  }};
  EvalOptions options;
  options.samples = 2;
  const auto report =
      run_eval({pair("short review", "thorough review")}, two_criteria(), judge, options);
  ASSERT_EQ(judge.requests().size(), 4U);
  EXPECT_EQ(shown_first(judge.requests()[0]), "short review");
  EXPECT_EQ(shown_first(judge.requests()[1]), "thorough review");
  ASSERT_EQ(report.cases.size(), 1U);
  EXPECT_EQ(report.cases[0].verdict, Verdict::tie);
  EXPECT_EQ(report.cases[0].tally.tie, 2);
  EXPECT_EQ(report.pairwise.tie, 1);
  // Asked for with a schema, so Ollama's `format` / OpenAI's response_format carry it.
  ASSERT_TRUE(judge.requests()[0].json_schema.has_value());
  EXPECT_EQ(judge.requests()[0].json_schema->at("required"), (nlohmann::json{"reason", "winner"}));
}

TEST(Judge, PairwiseFindsTheBetterCandidateWhicheverSideItIsShown) {
  FunctionChatClient judge{[](const llm::ChatRequest& request) {
    const bool thorough_first = shown_first(request) == "thorough review";
    return FunctionChatClient::answer(std::string{R"({"reason": "more complete", "winner": ")"} +
                                      (thorough_first ? "A" : "B") + "\"}");
  }};
  EvalOptions options;
  options.samples = 3;
  auto report = run_eval({pair("short review", "thorough review")}, two_criteria(), judge, options);
  EXPECT_EQ(report.cases[0].verdict, Verdict::b);
  EXPECT_EQ(report.cases[0].tally.b, 3);
  report = run_eval({pair("thorough review", "short review")}, two_criteria(), judge, options);
  EXPECT_EQ(report.cases[0].verdict, Verdict::a);
  EXPECT_NE(render_table(report, two_criteria()).find("winner A"), std::string::npos);
}

TEST(Judge, ScoresAreAveragedOverSamplesWithTheirSpread) {
  int call = 0;
  FunctionChatClient judge{[&call](const llm::ChatRequest&) {
    const int score = ++call == 1 ? 6 : 8;  // samples: 6, 8, 8
    return FunctionChatClient::answer(
        nlohmann::json{{"scores",
                        {{"accuracy", {{"reason", "r"}, {"score", score}}},
                         {"clarity", {{"reason", "r"}, {"score", score}}}}}}
            .dump());
  }};
  EvalCase item;
  item.id = "scored";
  item.context = "PR";
  item.candidate = "review";
  item.reference = "the ideal review";
  EvalOptions options;
  options.samples = 3;
  const auto report = run_eval({item}, two_criteria(), judge, options);
  const auto& overall = report.cases[0].overall;
  EXPECT_NEAR(overall.mean, 22.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(overall.min, 6);
  EXPECT_DOUBLE_EQ(overall.max, 8);
  EXPECT_NEAR(overall.stddev, 0.9428, 1e-3);
  EXPECT_EQ(overall.n, 3);
  // The reference reached the judge; samples differ by seed.
  EXPECT_NE(FunctionChatClient::prompt_of(judge.requests()[0]).find("the ideal review"),
            std::string::npos);
  EXPECT_NE(judge.requests()[0].seed, judge.requests()[1].seed);
  const auto json = to_json(report, two_criteria());
  EXPECT_EQ(json["cases"][0]["samples"].size(), 3U);
  EXPECT_EQ(json["cases"][0]["samples"][0]["scores"]["accuracy"]["reason"], "r");
}

TEST(Judge, UnreadableAnswersCostASampleNotTheRun) {
  int call = 0;
  FunctionChatClient judge{[&call](const llm::ChatRequest&) {
    if (++call == 1) {
      return FunctionChatClient::answer("I'd give it a seven.");
    }
    return FunctionChatClient::answer(
        "```json\n{\"scores\": {\"accuracy\": {\"score\": 7}, \"clarity\": 9}}\n```");
  }};
  EvalCase item;
  item.candidate = "c";
  EvalOptions options;
  options.samples = 2;
  const auto report = run_eval({item}, two_criteria(), judge, options);
  EXPECT_EQ(report.cases[0].failed_samples, 1);
  EXPECT_EQ(report.cases[0].overall.n, 1);
  EXPECT_DOUBLE_EQ(report.overall.mean, 8.0);
  EXPECT_EQ(report.failed_cases, 0);
}

TEST(Judge, SpreadOfNothingIsZero) {
  const auto spread = spread_of({});
  EXPECT_EQ(spread.n, 0);
  EXPECT_DOUBLE_EQ(spread.mean, 0);
}

}  // namespace
}  // namespace llmgw::eval
