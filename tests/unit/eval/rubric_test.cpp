#include "llmgw/eval/rubric.hpp"

#include <gtest/gtest.h>

namespace llmgw::eval {
namespace {

constexpr std::string_view kRubric = R"(
name: review-quality
instructions: The candidate is a code review.
scale: {min: 1, max: 10}
criteria:
  - {name: accuracy, description: Claims match the diff., weight: 2}
  - {name: clarity, description: Easy to act on.}
)";

std::string error_of(std::string_view yaml) {
  try {
    parse_rubric(yaml);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "(accepted)";
}

TEST(Rubric, ParsesCriteriaWeightsAndScale) {
  const auto rubric = parse_rubric(kRubric);
  EXPECT_EQ(rubric.name, "review-quality");
  ASSERT_EQ(rubric.criteria.size(), 2U);
  EXPECT_EQ(rubric.criteria[0].name, "accuracy");
  EXPECT_DOUBLE_EQ(rubric.criteria[0].weight, 2.0);
  EXPECT_DOUBLE_EQ(rubric.criteria[1].weight, 1.0);
  EXPECT_EQ(rubric.max_score, 10);
}

TEST(Rubric, RefusesBadRubricsNamingTheKey) {
  EXPECT_EQ(error_of("criteria: []"), "criteria: must be a non-empty list");
  EXPECT_EQ(error_of("colour: red\ncriteria: [{name: a}]"), "colour: unknown key");
  EXPECT_EQ(error_of("criteria: [{name: a}, {name: b, weight: -1}]"),
            "criteria[1].weight: must be a positive number");
  EXPECT_EQ(error_of("criteria: [{name: a, colour: x}]"), "criteria[0].colour: unknown key");
  EXPECT_EQ(error_of("criteria: [{name: a}, {name: a}]"),
            "criteria[1].name: must be unique and not empty");
  EXPECT_EQ(error_of("scale: {min: 5, max: 5}\ncriteria: [{name: a}]"),
            "scale: min must be below max");
}

TEST(Rubric, ScoresMustCoverEveryCriterionWithinTheScale) {
  const auto rubric = parse_rubric(kRubric);
  const auto scores = parse_scores(
      {{"scores", {{"accuracy", {{"score", 8}, {"reason", "ok"}}}, {"clarity", {{"score", "5"}}}}}},
      rubric);
  EXPECT_EQ(scores.at("accuracy").score, 8);
  EXPECT_EQ(scores.at("accuracy").reason, "ok");
  EXPECT_EQ(scores.at("clarity").score, 5);
  // (8 * 2 + 5 * 1) / 3
  EXPECT_DOUBLE_EQ(weighted_score(scores, rubric), 7.0);

  EXPECT_THROW(parse_scores({{"scores", {{"accuracy", 8}}}}, rubric), std::invalid_argument);
  EXPECT_THROW(parse_scores({{"accuracy", 11}, {"clarity", 3}}, rubric), std::invalid_argument);
  EXPECT_THROW(parse_scores({{"accuracy", "high"}, {"clarity", 3}}, rubric), std::invalid_argument);
}

TEST(Rubric, VerdictsAcceptTheUsualSpellings) {
  EXPECT_EQ(parse_verdict({{"winner", "A"}}), Verdict::a);
  EXPECT_EQ(parse_verdict({{"winner", "Candidate B"}}), Verdict::b);
  EXPECT_EQ(parse_verdict({{"winner", "Tie"}}), Verdict::tie);
  EXPECT_THROW(parse_verdict({{"winner", "both"}}), std::invalid_argument);
  EXPECT_THROW(parse_verdict(nlohmann::json::object()), std::invalid_argument);
}

TEST(Dataset, ParsesScoredAndPairwiseCasesAndNamesTheBadLine) {
  const auto cases = parse_dataset(
      "# comment\n"
      R"({"id": "one", "context": "PR", "candidate": "c", "reference": "r"})"
      "\n\n"
      R"({"context": "PR", "candidate_a": "x", "candidate_b": "y"})"
      "\n");
  ASSERT_EQ(cases.size(), 2U);
  EXPECT_EQ(cases[0].id, "one");
  EXPECT_FALSE(cases[0].pairwise());
  EXPECT_EQ(cases[0].reference, "r");
  EXPECT_EQ(cases[1].id, "case-2");
  EXPECT_TRUE(cases[1].pairwise());

  try {
    parse_dataset("{\"candidate\": \"c\"}\n{\"candidate_a\": \"x\"}\n");
    FAIL() << "half a pair must be refused";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string{error.what()}.rfind("line 2:", 0), 0U) << error.what();
  }
  EXPECT_THROW(parse_dataset("not json\n"), std::invalid_argument);
  EXPECT_THROW(parse_dataset(R"({"context": "no candidate"})"), std::invalid_argument);
}

}  // namespace
}  // namespace llmgw::eval
