#include "llmgw/sim/tokenizer.hpp"

#include <gtest/gtest.h>

namespace llmgw::sim {
namespace {

TEST(SimTokenizer, OneTokenPerFourBytesAndAtLeastOne) {
  EXPECT_EQ(tokenize("").size(), 1u);
  EXPECT_EQ(tokenize("abc").size(), 1u);
  EXPECT_EQ(tokenize("abcd").size(), 1u);
  EXPECT_EQ(tokenize("abcde").size(), 2u);
  EXPECT_EQ(tokenize(std::string(4000, 'x')).size(), 1000u);
  EXPECT_EQ(count_tokens("abcdefghij"), 3u);
  EXPECT_EQ(count_tokens(""), 1u);
}

TEST(SimTokenizer, EqualPiecesGetEqualIdsAndDifferentPiecesDiffer) {
  const Tokens a = tokenize("abcdabcdwxyz");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], a[1]);
  EXPECT_NE(a[0], a[2]);
  EXPECT_EQ(tokenize("abcdabcdwxyz"), a) << "tokenizing is deterministic";
}

TEST(SimTokenizer, DetokenizeInvertsTokenize) {
  for (const std::string text : {"", "a", "abcd", "abcde", "<|user|>\nhello\n<|assistant|>\n"}) {
    EXPECT_EQ(detokenize(tokenize(text)), text);
  }
}

TEST(SimTokenizer, CommonPrefixCountsSharedLeadingTokens) {
  EXPECT_EQ(common_prefix(tokenize("abcdefghijkl"), tokenize("abcdefghXXXX")), 2u);
  EXPECT_EQ(common_prefix(tokenize("abcd"), tokenize("abcdefgh")), 1u);
  EXPECT_EQ(common_prefix(Tokens{}, tokenize("abcd")), 0u);
}

TEST(SimTokenizer, ChatTemplateRendersRolesAndGenerationPrompt) {
  EXPECT_EQ(render_chat({{"system", "be brief"}, {"user", "hi"}}),
            "<|system|>\nbe brief\n<|user|>\nhi\n<|assistant|>\n");
  EXPECT_EQ(render_generate("", "why?", false), "<|user|>\nwhy?\n<|assistant|>\n");
  EXPECT_EQ(render_generate("sys", "why?", false),
            "<|system|>\nsys\n<|user|>\nwhy?\n<|assistant|>\n");
  EXPECT_EQ(render_generate("sys", "[INST] raw", true), "[INST] raw");
}

// The property the KV cache relies on: a later turn's prompt starts with the earlier turn's prompt
// followed by the reply, so everything the slot holds after turn 1 except a partial last piece is
// a prefix of turn 2.
TEST(SimTokenizer, NextTurnPromptExtendsPreviousPromptPlusReply) {
  const std::vector<ChatMessage> turn1{{"system", "You are terse."},
                                       {"user", "Why is the sky blue?"}};
  const std::string reply = "Rayleigh scattering of sunlight.";
  const std::string served = render_chat(turn1) + reply;

  auto turn2 = turn1;
  turn2.push_back({"assistant", reply});
  turn2.push_back({"user", "And sunsets?"});
  const std::string prompt2 = render_chat(turn2);

  ASSERT_EQ(prompt2.compare(0, served.size(), served), 0);
  const Tokens cached = tokenize(served);
  EXPECT_GE(common_prefix(cached, tokenize(prompt2)), cached.size() - 1);
}

// What a slot keeps (whole pieces only) is entirely a prefix of the next turn, so Ollama's
// multi-user slot choice reuses that slot in place instead of copying it (kv_cache.hpp).
TEST(SimTokenizer, WholeTokensOfServedTextAreAllAPrefixOfTheNextTurn) {
  const std::vector<ChatMessage> turn1{{"user", "Why is the sky blue?"}};
  const std::string served = render_chat(turn1) + "Rayleigh scattering.";
  auto turn2 = turn1;
  turn2.push_back({"assistant", "Rayleigh scattering."});
  turn2.push_back({"user", "And sunsets?"});
  const Tokens kept = whole_tokens(served);
  EXPECT_EQ(kept.size(), served.size() / kBytesPerToken);
  EXPECT_EQ(common_prefix(kept, tokenize(render_chat(turn2))), kept.size());
  EXPECT_TRUE(whole_tokens("abc").empty());
  EXPECT_EQ(whole_tokens("abcdefg"), tokenize("abcd"));
}

}  // namespace
}  // namespace llmgw::sim
