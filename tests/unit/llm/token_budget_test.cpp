#include "llmgw/llm/token_budget.hpp"

#include <gtest/gtest.h>

namespace llmgw::llm {
namespace {

TEST(TokenBudget, EstimatesErrHighForCode) {
  EXPECT_EQ(estimate_tokens(""), 1);
  // 400 bytes of code: a real tokenizer gives ~100-130 tokens; we must not say fewer.
  const std::string code(400, 'x');
  EXPECT_GE(estimate_tokens(code), 130);
  EXPECT_LE(estimate_tokens(code), 200);
}

TEST(TokenBudget, InputBudgetSubtractsReplyAndInstructionsAndNeverGoesNegative) {
  EXPECT_EQ(input_budget(8192, 1024, 300), 6868);
  EXPECT_EQ(input_budget(1000, 1024, 300), 0);
}

TEST(TokenBudget, FitsInOrderAndSkipsWhatDoesNotFit) {
  const auto fit = fit_to_budget({40, 70, 30, 20}, 100);
  EXPECT_EQ(fit.included, (std::vector<std::size_t>{0, 2, 3}));
  EXPECT_EQ(fit.left_out, (std::vector<std::size_t>{1}));
  EXPECT_EQ(fit.used_tokens, 90);
}

TEST(TokenBudget, TruncatedTextFitsAndSaysSo) {
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text += "line " + std::to_string(i) + " of the diff\n";
  }
  const auto cut = truncate_to_tokens(text, 100);
  EXPECT_LE(estimate_tokens(cut), 100);
  EXPECT_NE(cut.find("[... truncated ...]"), std::string::npos);
  EXPECT_EQ(cut.find("line 0 of the diff\n"), 0U);
  // Cut at a line boundary: the marker follows a complete line.
  EXPECT_NE(cut.find(" of the diff\n\n[... truncated"), std::string::npos) << cut;
  EXPECT_EQ(truncate_to_tokens("short", 100), "short");
}

TEST(TokenBudget, TruncationNeverSplitsAUtf8Character) {
  std::string umlauts;
  for (int i = 0; i < 100; ++i) {
    umlauts += "\xC3\xBC";  // ü
  }
  const auto cut = truncate_to_tokens(umlauts, 20, "");
  ASSERT_FALSE(cut.empty());
  EXPECT_EQ(cut.size() % 2, 0U) << "a multi-byte character was split";
  EXPECT_LT(cut.size(), umlauts.size());
}

}  // namespace
}  // namespace llmgw::llm
