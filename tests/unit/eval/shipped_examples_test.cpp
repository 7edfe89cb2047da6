// The example rubric and dataset in config/eval must stay valid: the README points users at them.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "llmgw/eval/rubric.hpp"

namespace llmgw::eval {
namespace {

std::string read(const std::string& relative) {
  std::ifstream file{std::string{LLMGW_SOURCE_DIR} + "/" + relative};
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(ShippedExamples, RubricHasTheFourReviewCriteria) {
  const auto rubric = parse_rubric(read("config/eval/rubric.yaml"));
  std::vector<std::string> names;
  for (const auto& criterion : rubric.criteria) {
    names.push_back(criterion.name);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"accuracy", "completeness", "clarity", "actionability"}));
}

TEST(ShippedExamples, DatasetHasScoredAndPairwiseCases) {
  const auto cases = parse_dataset(read("config/eval/dataset.jsonl"));
  ASSERT_GE(cases.size(), 3U);
  EXPECT_TRUE(
      std::any_of(cases.begin(), cases.end(), [](const EvalCase& c) { return c.pairwise(); }));
  EXPECT_TRUE(std::any_of(cases.begin(), cases.end(),
                          [](const EvalCase& c) { return c.reference.has_value(); }));
}

}  // namespace
}  // namespace llmgw::eval
