#include "llmgw/util/text.hpp"

#include <gtest/gtest.h>

namespace llmgw::util {
namespace {

TEST(Text, SplitsLinesDroppingCrAndTheFinalEmptyLine) {
  EXPECT_EQ(split_lines("a\r\nb\n"), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(split_lines("a\n\nb"), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_TRUE(split_lines("").empty());
}

TEST(Text, TrimsSpacesAndTabs) {
  EXPECT_EQ(trim(" \tx y\t "), "x y");
  EXPECT_EQ(trim("   "), "");
}

TEST(Text, ReplacesInvalidUtf8SoThatJsonAcceptsIt) {
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(valid_utf8("bad\xff!"), "bad\xef\xbf\xbd!");
}

TEST(Text, Utf8PrefixNeverSplitsACharacter) {
  const std::string text = "ab\xc3\xa9z";  // a b é z
  EXPECT_EQ(utf8_prefix(text, 3), "ab");
  EXPECT_EQ(utf8_prefix(text, 4), "ab\xc3\xa9");
  EXPECT_EQ(utf8_prefix(text, 99), text);
}

}  // namespace
}  // namespace llmgw::util
