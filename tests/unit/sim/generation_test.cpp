#include "llmgw/sim/generation.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace llmgw::sim {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(SimLatencyModel, PrefillAndDecodeFollowTheRatesAndTimeScale) {
  LatencyModel model{1000.0, 50.0, 1.0};
  EXPECT_EQ(model.prefill(500), milliseconds{500});
  EXPECT_EQ(model.decode(10), milliseconds{200});
  EXPECT_EQ(model.prefill(0), nanoseconds{0});
  model.time_scale = 0.01;
  EXPECT_EQ(model.prefill(500), milliseconds{5});
  EXPECT_EQ(model.decode(10), milliseconds{2});
  EXPECT_EQ(model.decode(10, 3.0), milliseconds{6}) << "slow fault multiplies";
}

TEST(SimCompletion, SameInputsGiveTheSameReply) {
  const Tokens prompt = tokenize("<|user|>\nhello\n<|assistant|>\n");
  const auto a = plan_completion(7, "llama3.2", prompt, {}, std::nullopt);
  const auto b = plan_completion(7, "llama3.2", prompt, {}, std::nullopt);
  EXPECT_EQ(a.text(), b.text());
  EXPECT_NE(a.text(), plan_completion(8, "llama3.2", prompt, {}, std::nullopt).text())
      << "the seed changes the reply";
}

TEST(SimCompletion, LengthStaysWithinBoundsAndLimitCutsIt) {
  for (int i = 0; i < 50; ++i) {
    const auto completion =
        plan_completion(1, "m", tokenize("prompt " + std::to_string(i)), {5, 9}, std::nullopt);
    EXPECT_GE(completion.pieces.size(), 5u);
    EXPECT_LE(completion.pieces.size(), 9u);
    EXPECT_FALSE(completion.hit_limit);
  }
  const auto cut = plan_completion(1, "m", tokenize("p"), {20, 30}, 3);
  EXPECT_EQ(cut.pieces.size(), 3u);
  EXPECT_TRUE(cut.hit_limit);
  const auto roomy = plan_completion(1, "m", tokenize("p"), {20, 30}, 100);
  EXPECT_FALSE(roomy.hit_limit);
}

TEST(SimCompletion, IgnoreEosRunsToTheLimit) {
  const auto longer = plan_completion(1, "m", tokenize("p"), {20, 30, true}, 1000);
  EXPECT_EQ(longer.pieces.size(), 1000u) << "past the natural length";
  EXPECT_TRUE(longer.hit_limit);
  const auto shorter = plan_completion(1, "m", tokenize("p"), {20, 30, true}, 3);
  EXPECT_EQ(shorter.pieces.size(), 3u);
  const auto unlimited = plan_completion(1, "m", tokenize("p"), {20, 30, true}, std::nullopt);
  EXPECT_GE(unlimited.pieces.size(), 20u) << "no limit: the natural length";
  EXPECT_LE(unlimited.pieces.size(), 30u);
}

TEST(SimEmbedding, UnitLengthAndDeterministic) {
  const auto a = embed_text("all-minilm", "why is the sky blue?", 384);
  ASSERT_EQ(a.size(), 384u);
  double norm = 0;
  for (float x : a)
    norm += static_cast<double>(x) * x;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
  EXPECT_EQ(a, embed_text("all-minilm", "why is the sky blue?", 384));
  EXPECT_NE(a, embed_text("all-minilm", "why is grass green?", 384));
}

}  // namespace
}  // namespace llmgw::sim
