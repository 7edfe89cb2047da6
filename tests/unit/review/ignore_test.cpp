#include "llmgw/review/ignore.hpp"

#include <gtest/gtest.h>

#include "fakes/sample_pr.hpp"

namespace llmgw::review {
namespace {

TEST(GlobMatches, FollowsGitignoreRules) {
  EXPECT_TRUE(glob_matches("*.min.js", "web/static/app.min.js"));
  EXPECT_TRUE(glob_matches("*.min.js", "app.min.js"));
  EXPECT_FALSE(glob_matches("*.min.js", "web/app.js"));
  EXPECT_TRUE(glob_matches("**/vendor/**", "vendor/github.com/x/y.go"));
  EXPECT_TRUE(glob_matches("**/vendor/**", "src/vendor/lib.c"));
  EXPECT_FALSE(glob_matches("**/vendor/**", "src/vendors.c"));
  EXPECT_TRUE(glob_matches("docs/*.md", "docs/a.md"));
  EXPECT_FALSE(glob_matches("docs/*.md", "docs/sub/a.md")) << "* stays within a segment";
  EXPECT_TRUE(glob_matches("docs/**/*.md", "docs/sub/deeper/a.md"));
  EXPECT_TRUE(glob_matches("/Cargo.lock", "Cargo.lock"));
  EXPECT_FALSE(glob_matches("/Cargo.lock", "sub/Cargo.lock"));
  EXPECT_TRUE(glob_matches("file?.txt", "a/file1.txt"));
  EXPECT_FALSE(glob_matches("", "a"));
}

TEST(DefaultIgnores, CoverLockFilesVendoredGeneratedAndMinified) {
  const auto& globs = default_ignore_globs();
  const auto ignored = [&](std::string_view path) {
    return std::any_of(globs.begin(), globs.end(),
                       [&](const std::string& glob) { return glob_matches(glob, path); });
  };
  for (const auto* path : {"package-lock.json", "web/yarn.lock", "go.sum", "vendor/a/b.go",
                           "third_party/zlib/inflate.c", "api/gen.pb.go", "static/app.min.js",
                           "node_modules/x/index.js", "proto/service_pb2.py"}) {
    EXPECT_TRUE(ignored(path)) << path;
  }
  for (const auto* path : {"src/main.cpp", "README.md", "go.mod", "package.json", "lock.cpp"}) {
    EXPECT_FALSE(ignored(path)) << path;
  }
}

TEST(DropIgnoredFiles, RemovesFilesAndTheirDiffsAndNamesThem) {
  auto pr = fakes::sample_pull_request();
  const auto dropped = drop_ignored_files(pr, {"docs/**", "*.hpp"});
  EXPECT_EQ(dropped, (std::vector<std::string>{"src/cache.hpp", "docs/old.md"}));
  ASSERT_EQ(pr.files.size(), 1u);
  EXPECT_EQ(pr.files[0].filename, "src/cache.cpp");
  ASSERT_EQ(pr.file_diffs.size(), 1u);
  EXPECT_EQ(pr.file_diffs[0].path(), "src/cache.cpp");
  EXPECT_NE(ignored_note(dropped).find("2 file(s) not reviewed"), std::string::npos);
  EXPECT_EQ(ignored_note({}), "");
}

}  // namespace
}  // namespace llmgw::review
