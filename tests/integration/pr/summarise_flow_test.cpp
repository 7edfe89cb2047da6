// `llmgw summarise` end to end: the real binary against the fake GitHub API and a scripted model
// server speaking Ollama's /api/chat.

#include <gtest/gtest.h>

#include <chrono>

#include "fakes/fake_github.hpp"
#include "fakes/fake_openai.hpp"
#include "support/run_process.hpp"

namespace llmgw {
namespace {

using fakes::FakeOpenAi;
using fakes::FakeReply;

constexpr std::string_view kToken = "ghp_SUMMARISE_TEST_TOKEN_42";

// A pull request of `count` new files, each `lines` long.
fakes::FakePull big_pull(int count, int lines) {
  fakes::FakePull pull;
  pull.meta.number = 7;
  pull.meta.title = "Rewrite the storage layer";
  pull.meta.body = "Moves every table to the new engine.";
  pull.meta.author = "octocat";
  pull.meta.state = "open";
  pull.meta.head_sha = std::string(40, 'b');
  pull.meta.base_sha = std::string(40, 'a');
  pull.meta.head_ref = "storage";
  pull.meta.base_ref = "main";
  pull.meta.html_url = "https://github.com/acme/big/pull/7";
  for (int f = 0; f < count; ++f) {
    const std::string path = "src/table_" + std::to_string(f) + ".cpp";
    std::string patch = "@@ -0,0 +1," + std::to_string(lines) + " @@\n";
    std::string content;
    for (int i = 0; i < lines; ++i) {
      const auto line = "int table_" + std::to_string(f) + "_value_" + std::to_string(i) + " = 0;";
      patch += "+" + line + "\n";
      content += line + "\n";
    }
    github::ChangedFile file;
    file.filename = path;
    file.status = "added";
    file.additions = lines;
    file.patch = patch;
    pull.files.push_back(file);
    pull.diff += "diff --git a/" + path + " b/" + path +
                 "\nnew file mode 100644\n--- /dev/null\n+++ b/" + path + "\n" + patch;
    pull.head_files[path] = content;
  }
  return pull;
}

// A summariser model: one line per file for map prompts, an overview otherwise.
FakeReply summariser(const fakes::RecordedRequest& request) {
  const auto prompt = request.last_message();
  const auto marker = prompt.find("This is one file of the pull request:\n### ");
  if (marker != std::string::npos) {
    const auto start = marker + 42;
    const auto path = prompt.substr(start, prompt.find(' ', start) - start);
    return FakeReply::text("Adds " + path + " with its default values.");
  }
  if (request.body.contains("format")) {
    return FakeReply::text(
        R"({"what_changed": "Tables move to the new engine.", "why": "Speed.", "risk_areas": ["data migration"]})");
  }
  return FakeReply::text(
      "## What changed and why\nEvery table moves to the new engine.\n\n## Risk areas\n- data "
      "migration\n");
}

class SummariseFlow : public ::testing::Test {
 protected:
  void SetUp() override {
    github_.add_pull("acme/big", big_pull(5, 60));
    github_.require_token(std::string{kToken});
    model_.set_responder(summariser);
  }

  std::map<std::string, std::string> env() const {
    return {{"GITHUB_API_URL", github_.base_url()},
            {"OLLAMA_HOST", model_.base_url()},
            {"GITHUB_TOKEN", ""},
            {"GROQ_API_KEY", ""}};
  }

  fakes::FakeGithub github_;
  FakeOpenAi model_;
};

TEST_F(SummariseFlow, APrOverTheBudgetIsMappedPerFileAndReducedWithTheSeedsPositionalToken) {
  const auto result = testing::run_process(
      {LLMGW_BINARY, "summarise", "acme/big", "7", std::string{kToken}, "--context-tokens", "2048"},
      env());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.rfind("# Rewrite the storage layer\n", 0), 0U) << result.out;
  EXPECT_NE(result.out.find("Every table moves to the new engine."), std::string::npos);
  for (int f = 0; f < 5; ++f) {
    const auto path = "src/table_" + std::to_string(f) + ".cpp";
    EXPECT_NE(result.out.find("- `" + path + "` (added): Adds " + path), std::string::npos)
        << result.out;
  }
  EXPECT_NE(result.err.find("[5/5] src/table_4.cpp"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("exceeds the budget"), std::string::npos) << result.err;

  const auto requests = model_.requests();
  ASSERT_EQ(requests.size(), 6U) << "5 files mapped, 1 reduce";
  for (const auto& request : requests) {
    EXPECT_EQ(request.path, "/api/chat");
    EXPECT_EQ(request.header("X-Session-ID"), "acme/big#7") << "one PR, one gateway node";
    EXPECT_EQ(request.body["model"], "llama3.2");
    EXPECT_EQ(request.body["options"]["num_ctx"], 2048);
  }
  EXPECT_EQ(result.out.find(kToken), std::string::npos);
  EXPECT_EQ(result.err.find(kToken), std::string::npos);
  // The fake reports 11 prompt and 7 completion tokens per call: 6 calls.
  EXPECT_NE(result.out.find("_Usage: llama3.2 via ollama, 66 tokens in / 42 out, "),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find(" s, 6 model calls._\n"), std::string::npos) << result.out;
}

// A model that refuses connections will refuse them in a second too: no backoff, a clear error.
TEST_F(SummariseFlow, AnUnreachableModelFailsFast) {
  std::string closed_url;
  {
    FakeOpenAi gone;
    closed_url = gone.base_url();
  }
  auto environment = env();
  environment["OLLAMA_HOST"] = closed_url;
  const auto started = std::chrono::steady_clock::now();
  const auto result = testing::run_process(
      {LLMGW_BINARY, "summarise", "acme/big", "7", "--token", std::string{kToken}}, environment);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("Connection refused"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("retrying"), std::string::npos) << result.err;
  // Generous for a sanitizer build's start on a loaded machine (3.9 s seen at load 12); the four
  // backoffs of the default retry policy alone would take about 7.5 s.
  EXPECT_LT(elapsed, std::chrono::milliseconds{6000});
}

TEST_F(SummariseFlow, FilesBeyondTheLimitAreNamedAsLeftOut) {
  const auto result =
      testing::run_process({LLMGW_BINARY, "summarise", "acme/big", "7", "--token",
                            std::string{kToken}, "--context-tokens", "2048", "--max-files", "3"},
                           env());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto section = result.out.find("## Files left out");
  ASSERT_NE(section, std::string::npos) << result.out;
  EXPECT_NE(result.out.find("- `src/table_3.cpp`", section), std::string::npos);
  EXPECT_NE(result.out.find("- `src/table_4.cpp`", section), std::string::npos);
  EXPECT_EQ(model_.request_count(), 4U);
}

TEST_F(SummariseFlow, JsonOutputCarriesTheFieldsAndTheLeftOutFiles) {
  auto variables = env();
  variables["GITHUB_TOKEN"] = std::string{kToken};
  const auto result = testing::run_process({LLMGW_BINARY, "summarise", "acme/big", "7", "--json",
                                            "--context-tokens", "2048", "--max-files", "4"},
                                           variables);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out, nullptr, false);
  ASSERT_TRUE(json.is_object()) << result.out;
  EXPECT_EQ(json["title"], "Rewrite the storage layer");
  EXPECT_EQ(json["what_changed"], "Tables move to the new engine.");
  EXPECT_EQ(json["risk_areas"], (nlohmann::json{"data migration"}));
  EXPECT_EQ(json["files"].size(), 4U);
  EXPECT_EQ(json["left_out"], (nlohmann::json{"src/table_4.cpp"}));
  EXPECT_EQ(json["map_reduce"], true);
  EXPECT_TRUE(model_.requests().back().body.contains("format")) << "the reduce asks for a schema";
}

TEST_F(SummariseFlow, ASmallPrIsOneCallThroughTheOpenAiCompatibleApi) {
  github_.add_pull("acme/small", big_pull(2, 5));
  auto variables = env();
  variables["GROQ_API_KEY"] = "gsk_NOT_TO_BE_PRINTED";
  const auto result = testing::run_process(
      {LLMGW_BINARY, "summarise", "acme/small", "7", "--token", std::string{kToken}, "--provider",
       "openai", "--base-url", model_.openai_base_url(), "--model", "fast-model"},
      variables);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto requests = model_.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].path, "/v1/chat/completions");
  EXPECT_EQ(requests[0].body["model"], "fast-model");
  EXPECT_EQ(requests[0].header("Authorization"), "Bearer gsk_NOT_TO_BE_PRINTED");
  EXPECT_FALSE(requests[0].header("X-Session-ID").has_value()) << "only local calls carry it";
  EXPECT_NE(result.out.find("## Risk areas"), std::string::npos);
  EXPECT_EQ(result.err.find("gsk_NOT_TO_BE_PRINTED"), std::string::npos);
}

TEST_F(SummariseFlow, ErrorsExitWithOneAndUsageErrorsWithTwo) {
  auto result = testing::run_process({LLMGW_BINARY, "summarise", "acme/big", "7"}, env());
  EXPECT_EQ(result.exit_code, 1) << "no token: the fake GitHub answers 401";
  EXPECT_NE(result.err.find("401"), std::string::npos) << result.err;

  result = testing::run_process({LLMGW_BINARY, "summarise", "not-a-repo", "7"}, env());
  EXPECT_EQ(result.exit_code, 2) << result.err;
  result = testing::run_process({LLMGW_BINARY, "summarise", "acme/big", "7", "--provider", "bard"},
                                env());
  EXPECT_EQ(result.exit_code, 2) << result.err;
  result =
      testing::run_process({LLMGW_BINARY, "summarise", "acme/big", "7", "--provider", "groq"},
                           {{"GROQ_API_KEY", ""}, {"OPENAI_API_KEY", ""}, {"GROQ_BASE_URL", ""}});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("GROQ_API_KEY"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace llmgw
