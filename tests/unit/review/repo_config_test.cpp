#include "llmgw/review/repo_config.hpp"

#include <gtest/gtest.h>

namespace llmgw::review {
namespace {

std::string error_of(std::string_view yaml) {
  try {
    parse_repo_config(yaml);
  } catch (const RepoConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RepoConfig, ParsesEveryKey) {
  const auto config = parse_repo_config(
      "model: qwen2.5-coder:14b\n"
      "instructions: |\n  Prefer absl::Status.\n"
      "ignore: [\"gen/**\", \"*.snap\"]\n"
      "default_ignores: false\n"
      "max_comments: 5\n"
      "severity_threshold: warning\n");
  EXPECT_EQ(config.model, "qwen2.5-coder:14b");
  EXPECT_EQ(config.instructions, "Prefer absl::Status.\n");
  EXPECT_EQ(config.ignore, (std::vector<std::string>{"gen/**", "*.snap"}));
  EXPECT_EQ(config.default_ignores, false);
  EXPECT_EQ(config.max_comments, 5);
  EXPECT_EQ(config.severity_threshold, "warning");
  EXPECT_FALSE(parse_repo_config("").model.has_value());
}

TEST(RepoConfig, ErrorsNameTheKeyPath) {
  EXPECT_EQ(error_of("max_coments: 3\n").rfind("max_coments: unknown key (known: model,", 0), 0u);
  EXPECT_EQ(error_of("ignore: [\"a\", [1]]\n"), "ignore[1]: must be a string");
  EXPECT_EQ(error_of("ignore: \"*.lock\"\n"), "ignore: must be a list of globs");
  EXPECT_EQ(error_of("max_comments: 0\n"), "max_comments: must be a whole number from 1 to 50");
  EXPECT_EQ(error_of("max_comments: many\n"), "max_comments: must be a whole number from 1 to 50");
  EXPECT_EQ(error_of("default_ignores: maybe\n"), "default_ignores: must be true or false");
  EXPECT_EQ(error_of("severity_threshold: high\n"),
            "severity_threshold: must be one of info, suggestion, warning, error (got 'high')");
  EXPECT_EQ(error_of("- a\n- b\n"), "(top level): must be a mapping of settings");
  EXPECT_EQ(error_of("model: [\n").rfind("(file): not valid YAML", 0), 0u);
  EXPECT_EQ(error_of("instructions: " + std::string(4001, 'x') + "\n"),
            "instructions: is longer than 4000 bytes");
}

TEST(RepoConfig, SeverityRanks) {
  EXPECT_LT(severity_rank("info"), severity_rank("suggestion"));
  EXPECT_LT(severity_rank("warning"), severity_rank("error"));
  EXPECT_EQ(severity_rank("critical"), -1);
}

}  // namespace
}  // namespace llmgw::review
