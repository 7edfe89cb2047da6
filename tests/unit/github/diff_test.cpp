#include "llmgw/github/diff.hpp"

#include <gtest/gtest.h>

namespace llmgw::github {
namespace {

constexpr std::string_view kTwoFileDiff =
    "diff --git a/src/app.cpp b/src/app.cpp\n"
    "index 1111111..2222222 100644\n"
    "--- a/src/app.cpp\n"
    "+++ b/src/app.cpp\n"
    "@@ -10,5 +10,6 @@ int main() {\n"
    " int a = 1;\n"
    "-int b = 2;\n"
    "+int b = 3;\n"
    "+int c = 4;\n"
    " int d = 5;\n"
    " return a;\n"
    "@@ -40,2 +41,2 @@\n"
    "--- a comment that starts with dashes\n"
    "+// a comment\n"
    " }\n"
    "diff --git a/README.md b/README.md\n"
    "new file mode 100644\n"
    "index 0000000..3333333\n"
    "--- /dev/null\n"
    "+++ b/README.md\n"
    "@@ -0,0 +1,2 @@\n"
    "+# Title\n"
    "+text\n"
    "\\ No newline at end of file\n";

TEST(DiffParser, MapsAddedAndContextLinesToNewNumbersAndRemovedToOld) {
  const auto files = parse_unified_diff(kTwoFileDiff);
  ASSERT_EQ(files.size(), 2u);
  const auto& app = files[0];
  EXPECT_EQ(app.path(), "src/app.cpp");
  ASSERT_EQ(app.hunks.size(), 2u);
  EXPECT_EQ(app.hunks[0].section, "int main() {");

  // RIGHT: context 10, added 11 and 12, context 13 and 14.
  for (int line : {10, 11, 12, 13, 14}) {
    EXPECT_TRUE(app.can_comment(line, Side::right)) << line;
  }
  EXPECT_FALSE(app.can_comment(15, Side::right));
  EXPECT_FALSE(app.can_comment(9, Side::right));
  // LEFT: only the removed line 11 of the old file.
  EXPECT_TRUE(app.can_comment(11, Side::left));
  EXPECT_FALSE(app.can_comment(10, Side::left));

  // A removed line whose text starts with "--" is a removed line, not a file header.
  EXPECT_TRUE(app.can_comment(40, Side::left));
  EXPECT_EQ(app.hunks[1].lines[0].text, "-- a comment that starts with dashes");
  EXPECT_TRUE(app.can_comment(41, Side::right));
  EXPECT_TRUE(app.can_comment(42, Side::right));
}

TEST(DiffParser, NewFileHasNoOldPathAndIgnoresNoNewlineMarker) {
  const auto files = parse_unified_diff(kTwoFileDiff);
  ASSERT_EQ(files.size(), 2u);
  const auto& readme = files[1];
  EXPECT_TRUE(readme.is_new);
  EXPECT_EQ(readme.old_path, "");
  EXPECT_EQ(readme.path(), "README.md");
  ASSERT_EQ(readme.hunks.size(), 1u);
  EXPECT_EQ(readme.hunks[0].lines.size(), 2u);
  EXPECT_TRUE(readme.can_comment(2, Side::right));
  EXPECT_FALSE(readme.can_comment(3, Side::right));
}

TEST(DiffParser, DeletedRenamedAndBinaryFiles) {
  const std::string diff =
      "diff --git a/old.txt b/old.txt\r\n"
      "deleted file mode 100644\r\n"
      "--- a/old.txt\r\n"
      "+++ /dev/null\r\n"
      "@@ -1,2 +0,0 @@\r\n"
      "-one\r\n"
      "-two\r\n"
      "diff --git a/lib/a b.py b/lib/c d.py\n"
      "similarity index 90%\n"
      "rename from lib/a b.py\n"
      "rename to lib/c d.py\n"
      "diff --git a/img.png b/img.png\n"
      "Binary files a/img.png and b/img.png differ\n";
  const auto files = parse_unified_diff(diff);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_TRUE(files[0].is_deleted);
  EXPECT_EQ(files[0].path(), "old.txt");
  EXPECT_TRUE(files[0].can_comment(2, Side::left));
  EXPECT_FALSE(files[0].can_comment(1, Side::right));
  EXPECT_EQ(files[0].hunks[0].lines[1].text, "two");  // CR stripped

  EXPECT_EQ(files[1].old_path, "lib/a b.py");
  EXPECT_EQ(files[1].path(), "lib/c d.py");
  EXPECT_TRUE(files[1].hunks.empty());

  EXPECT_TRUE(files[2].is_binary);
  EXPECT_EQ(files[2].path(), "img.png");
}

TEST(DiffParser, HunkHeaderWithoutCountsMeansOneLine) {
  const auto file = parse_file_patch("x.txt", "@@ -3 +3 @@\n-a\n+b\n");
  ASSERT_EQ(file.hunks.size(), 1u);
  EXPECT_TRUE(file.can_comment(3, Side::left));
  EXPECT_TRUE(file.can_comment(3, Side::right));
  EXPECT_EQ(file.path(), "x.txt");
}

TEST(DiffParser, FilePatchRoundTripsThroughToPatch) {
  const std::string patch = "@@ -1,3 +1,3 @@ fn\n a\n-b\n+B\n c\n";
  const auto file = parse_file_patch("f.c", patch);
  EXPECT_EQ(file.to_patch(), patch);
}

TEST(DiffParser, PlainUnifiedDiffWithoutGitHeaders) {
  const auto files = parse_unified_diff(
      "--- a/one.c\t2024-01-01\n+++ b/one.c\t2024-01-02\n@@ -1 +1 @@\n-x\n+y\n"
      "--- a/two.c\n+++ b/two.c\n@@ -5,1 +5,2 @@\n z\n+w\n");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path(), "one.c");
  EXPECT_EQ(files[1].path(), "two.c");
  EXPECT_TRUE(files[1].can_comment(6, Side::right));
}

TEST(DiffParser, GarbageAndEmptyInputGiveNoFiles) {
  EXPECT_TRUE(parse_unified_diff("").empty());
  EXPECT_TRUE(parse_unified_diff("hello\nworld\n").empty());
}

TEST(DiffParser, QuotedGitPaths) {
  const auto files = parse_unified_diff(
      "diff --git \"a/t\\303\\244st.txt\" \"b/t\\303\\244st.txt\"\n"
      "--- \"a/t\\303\\244st.txt\"\n+++ \"b/t\\303\\244st.txt\"\n@@ -1 +1 @@\n-a\n+b\n");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path(), "t\xc3\xa4st.txt");
}

// Found by tests/fuzz/diff_fuzzer: `git diff --no-prefix` of a one-letter file writes
// "diff --git x x", and the header guess read past the end of the halves (std::out_of_range
// escaped the parser).
TEST(DiffParser, NoPrefixGitHeaderWithShortPaths) {
  std::vector<FileDiff> files;
  ASSERT_NO_THROW(files = parse_unified_diff(
                      "diff --git x x\nindex 1..2 100644\n--- x\n+++ x\n@@ -1 +1 @@\n-a\n+b\n"));
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path(), "x");
  EXPECT_TRUE(files[0].can_comment(1, Side::right));
  ASSERT_NO_THROW(files = parse_unified_diff("diff --git x y\n"));
  ASSERT_NO_THROW(files = parse_unified_diff("diff --git  \n"));
}

// A hunk whose line numbers would pass INT_MAX is not a hunk of any real file: it is skipped
// instead of counting past the end of int (undefined behaviour).
TEST(DiffParser, HunkNumbersBeyondIntAreNotAHunk) {
  const auto file = parse_file_patch("x.txt", "@@ -2147483646,3 +2147483647,2 @@\n a\n-b\n c\n");
  EXPECT_TRUE(file.hunks.empty());
  const auto last = parse_file_patch("x.txt", "@@ -2147483646,1 +2147483647 @@\n a\n");
  ASSERT_EQ(last.hunks.size(), 1u);  // the very last line of an int-sized file is fine
  EXPECT_TRUE(last.can_comment(2147483647, Side::right));
}

TEST(CommentableLines, DescribesRangesAndFindsNearestLine) {
  const CommentableLines lines{parse_unified_diff(kTwoFileDiff)};
  EXPECT_TRUE(lines.contains("src/app.cpp", 12, Side::right));
  EXPECT_FALSE(lines.contains("src/app.cpp", 12, Side::left));
  EXPECT_FALSE(lines.contains("nope.cpp", 1, Side::right));
  EXPECT_TRUE(lines.has_file("README.md"));
  EXPECT_EQ(lines.describe("src/app.cpp"), "RIGHT 10-14, 41-42; LEFT 11, 40");
  EXPECT_EQ(lines.nearest("src/app.cpp", 30, Side::right), 41);
  EXPECT_EQ(lines.nearest("src/app.cpp", 20, Side::right), 14);
  EXPECT_EQ(lines.nearest("src/app.cpp", 100, Side::right), 42);
  EXPECT_EQ(lines.nearest("README.md", 5, Side::left), std::nullopt);
}

TEST(Side, ParsesAndPrintsGithubSpelling) {
  EXPECT_EQ(parse_side("right"), Side::right);
  EXPECT_EQ(parse_side("LEFT"), Side::left);
  EXPECT_EQ(parse_side("middle"), std::nullopt);
  EXPECT_EQ(to_string(Side::left), "LEFT");
}

}  // namespace
}  // namespace llmgw::github
