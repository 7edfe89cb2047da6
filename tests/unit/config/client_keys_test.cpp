// auth.keys_file: the file's format, what is refused with which line and key path, constant-time
// matching by SHA-256, and never a key in a message.

#include "llmgw/config/client_keys.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "llmgw/config/gateway_config.hpp"
#include "support/config_refusal.hpp"
#include "support/serve_process.hpp"

namespace llmgw::config::client_keys_test {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr const char* kChatKey = "chat-ui-0123456789abcdef";
constexpr const char* kEvalKey = "eval-fedcba9876543210zz";

TEST(ClientKeys, ParsesNamesKeysAndPriorityClassesSkippingCommentsAndBlankLines) {
  std::vector<std::string> problems;
  const auto keys = parse_client_keys(std::string{"# who: key [class]\n\n  chat-ui: "} + kChatKey +
                                          "  interactive\r\nnightly.eval:\t" + kEvalKey +
                                          " batch\nalice: alice-key-0123456789\n",
                                      problems);
  EXPECT_THAT(problems, IsEmpty());
  ASSERT_THAT(keys, SizeIs(3));
  EXPECT_EQ(keys[0].name, "chat-ui");
  EXPECT_EQ(keys[0].priority, "interactive");
  EXPECT_EQ(keys[0].sha256, sha256_of(kChatKey));
  EXPECT_EQ(keys[1].name, "nightly.eval");
  EXPECT_EQ(keys[1].priority, "batch");
  EXPECT_EQ(keys[1].sha256, sha256_of(kEvalKey));
  EXPECT_EQ(keys[2].name, "alice");
  EXPECT_EQ(keys[2].priority, "");
}

TEST(ClientKeys, Sha256IsTheStandardDigest) {
  // FIPS 180-2's example: SHA-256("abc").
  const auto digest = sha256_of("abc");
  EXPECT_EQ(digest[0], 0xba);
  EXPECT_EQ(digest[1], 0x78);
  EXPECT_EQ(digest[31], 0xad);
}

TEST(ClientKeys, EveryBadLineIsNamedWithItsNumberAndNoKeyIsEverQuoted) {
  std::vector<std::string> problems;
  const std::string secret = "s3cret-value-never-shown";
  const auto keys = parse_client_keys("ok: " + secret +
                                          "\n"
                                          "no colon here " +
                                          secret +
                                          "\n"
                                          "bad name!: " +
                                          secret +
                                          "x\n"
                                          "none: " +
                                          secret +
                                          "y\n"
                                          "short: tiny\n"
                                          "empty:\n"
                                          "classy: " +
                                          secret + "z urgent\n" + "ok: " + secret +
                                          "w\n"
                                          "again: " +
                                          secret + "\n",
                                      problems);
  ASSERT_THAT(keys, SizeIs(1));
  EXPECT_EQ(keys[0].name, "ok");
  EXPECT_THAT(
      problems,
      ElementsAre("line 2: expected `NAME: KEY` or `NAME: KEY interactive|batch`",
                  "line 3: the name must be 1-64 letters, digits, '_', '-' or '.', got "
                  "\"bad name!\"",
                  "line 4: the name \"none\" is reserved (requests without a key)",
                  "line 5: key short must be 16 to 4096 characters long, got 4",
                  "line 6: key empty has no key after the colon",
                  "line 7: key classy: the priority class must be interactive or batch, "
                  "got \"urgent\"",
                  "line 8: the name ok is used twice", "line 9: key again is the same key as ok"));
  for (const auto& problem : problems) {
    EXPECT_THAT(problem, Not(HasSubstr("s3cret")));
  }
}

TEST(ClientKeys, MatchesOnlyTheWholeKey) {
  std::vector<std::string> problems;
  const auto keys =
      parse_client_keys(std::string{"chat: "} + kChatKey + "\neval: " + kEvalKey, problems);
  ASSERT_THAT(keys, SizeIs(2));
  EXPECT_EQ(match_client_key(keys, kChatKey), &keys[0]);
  EXPECT_EQ(match_client_key(keys, kEvalKey), &keys[1]);
  const std::string chat{kChatKey};
  EXPECT_EQ(match_client_key(keys, chat.substr(0, chat.size() - 1)), nullptr);
  EXPECT_EQ(match_client_key(keys, chat + "x"), nullptr);
  EXPECT_EQ(match_client_key(keys, ""), nullptr);
  EXPECT_EQ(match_client_key({}, kChatKey), nullptr);
}

TEST(ClientKeys, TheLoaderReadsTheFileNextToTheConfigAndKeepsOnlyHashes) {
  const llmgw::testing::TempDir dir("llmgw-keys-test");
  dir.write("keys.txt", std::string{"chat: "} + kChatKey + " batch\n");
  const std::string file = dir.write("g.yaml", "auth: {keys_file: keys.txt}\n");
  const auto config = load_gateway_config({file, {}, {}});
  ASSERT_THAT(config.auth.keys, SizeIs(1));
  EXPECT_EQ(config.auth.keys[0].name, "chat");
  EXPECT_EQ(config.auth.keys[0].priority, "batch");
  EXPECT_EQ(match_client_key(config.auth.keys, kChatKey), &config.auth.keys[0]);
  EXPECT_TRUE(load_gateway_config({}).auth.keys.empty());  // off by default
}

TEST(ClientKeys, MissingEmptyOrBadKeysFilesAreRefusedWithTheKeyPath) {
  const llmgw::testing::TempDir dir("llmgw-keys-test");
  const std::string missing = dir.path() + "/no-such-keys";
  const std::string from_env =
      llmgw::testing::config_refusal({std::nullopt, {{"LLMGW_AUTH_KEYS_FILE", missing}}, {}});
  EXPECT_THAT(from_env, HasSubstr("auth.keys_file: cannot read \"" + missing +
                                  "\": No such file or directory"));
  EXPECT_THAT(from_env, HasSubstr("(from LLMGW_AUTH_KEYS_FILE)"));

  const std::string empty = dir.write("empty", "# nothing yet\n");
  EXPECT_EQ(
      llmgw::testing::config_refusal({std::nullopt, {}, {"auth.keys_file=" + empty}}),
      "auth.keys_file: \"" + empty + "\" holds no key (expected lines `NAME: KEY`) (from --set)");

  const std::string bad =
      dir.write("bad", std::string{"chat: "} + kChatKey + "\nchat: " + kEvalKey + "\n");
  const std::string refusal =
      llmgw::testing::config_refusal({std::nullopt, {}, {"auth.keys_file=" + bad}});
  EXPECT_THAT(refusal, HasSubstr("auth.keys_file: \"" + bad +
                                 "\" line 2: the name chat is used "
                                 "twice"));
  EXPECT_THAT(refusal, Not(HasSubstr(kEvalKey)));
  EXPECT_THROW(load_client_keys(bad), ConfigError);

  // Not read without bound.
  EXPECT_EQ(llmgw::testing::config_refusal({std::nullopt, {}, {"auth.keys_file=/dev/zero"}}),
            "auth.keys_file: \"/dev/zero\" is larger than 1 MiB (from --set)");
}

}  // namespace llmgw::config::client_keys_test
