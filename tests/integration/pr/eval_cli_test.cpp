// `llmgw eval` end to end: the real binary, a dataset and rubric on disk, a scripted judge.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "fakes/fake_openai.hpp"
#include "support/run_process.hpp"
#include "support/wait.hpp"

namespace llmgw {
namespace {

using fakes::FakeOpenAi;
using fakes::FakeReply;

// Scores "good" candidates 9 and everything else 4; in pairwise prompts it always prefers the
// first candidate shown (position bias), which the swap must neutralise into a tie.
FakeReply judge(const fakes::RecordedRequest& request) {
  const auto prompt = request.last_message();
  if (prompt.find("<candidate_A>") != std::string::npos) {
    return FakeReply::text(R"({"reason": "the first one reads better", "winner": "A"})");
  }
  const int score = prompt.find("<candidate>\ngood") != std::string::npos ? 9 : 4;
  nlohmann::json scores;
  for (const char* name : {"accuracy", "clarity"}) {
    scores[name] = {{"reason", "because"}, {"score", score}};
  }
  return FakeReply::text(nlohmann::json{{"scores", scores}}.dump());
}

class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("eval-cli");
    std::ofstream{dir_ + "/rubric.yaml"} << "criteria:\n  - {name: accuracy, description: right}\n"
                                            "  - {name: clarity, description: clear}\n";
    std::ofstream{dir_ + "/data.jsonl"}
        << R"({"id": "good-one", "context": "PR", "candidate": "good review"})"
           "\n"
        << R"({"id": "weak-one", "context": "PR", "candidate": "weak review"})"
           "\n"
        << R"({"id": "pair", "context": "PR", "candidate_a": "x", "candidate_b": "y"})"
           "\n";
    model_.set_responder(judge);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  testing::ProcessResult run(std::vector<std::string> extra) {
    std::vector<std::string> argv{LLMGW_BINARY,         "eval",           "--dataset",
                                  dir_ + "/data.jsonl", "--rubric",       dir_ + "/rubric.yaml",
                                  "--base-url",         model_.base_url()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::run_process(argv, {{"OLLAMA_HOST", ""}});
  }

  std::string dir_;
  FakeOpenAi model_;
};

TEST_F(EvalCli, PrintsATableWritesJsonAndPassesAboveTheThreshold) {
  const auto out_path = dir_ + "/out.json";
  const auto result = run({"--samples", "2", "--min-score", "6", "--out", out_path});
  ASSERT_EQ(result.exit_code, 0) << result.err << result.out;
  EXPECT_NE(result.out.find("good-one"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("mean score 6.50 over 2 scored cases"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("pairwise: tie"), std::string::npos) << result.out;

  std::ifstream file{out_path};
  const auto json = nlohmann::json::parse(file, nullptr, false);
  ASSERT_TRUE(json.is_object());
  EXPECT_DOUBLE_EQ(json["overall"]["mean"].get<double>(), 6.5);
  EXPECT_EQ(json["cases"][0]["samples"].size(), 2U);
  EXPECT_EQ(json["cases"][0]["samples"][0]["scores"]["accuracy"]["reason"], "because");
  EXPECT_EQ(json["cases"][2]["verdict"], "tie");
  EXPECT_EQ(json["cases"][2]["samples"][0]["a_first"]["winner"], "A");
  EXPECT_EQ(json["cases"][2]["samples"][0]["b_first"]["winner"], "B");

  // 2 scored cases x 2 samples + 1 pair x 2 samples x 2 orders, each with a JSON schema.
  const auto requests = model_.requests();
  EXPECT_EQ(requests.size(), 8U);
  for (const auto& request : requests) {
    EXPECT_TRUE(request.body.contains("format")) << request.body.dump();
  }
}

TEST_F(EvalCli, ExitsWithOneBelowTheMinimumScore) {
  const auto result = run({"--samples", "1", "--min-score", "7"});
  EXPECT_EQ(result.exit_code, 1) << result.err << result.out;
  EXPECT_NE(result.err.find("below --min-score 7"), std::string::npos) << result.err;
}

TEST_F(EvalCli, ABadRubricIsAUsageErrorNamingTheKey) {
  std::ofstream{dir_ + "/rubric.yaml", std::ios::trunc} << "criteria:\n  - {name: a, weight: 0}\n";
  const auto result = run({});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("criteria[0].weight"), std::string::npos) << result.err;
  EXPECT_EQ(model_.request_count(), 0U);
}

// A judge that cannot be reached is not a bad sample: say so, exit 3, and do not retry a refused
// connection for seconds as if it were a passing hiccup.
TEST_F(EvalCli, AnUnreachableJudgeIsReportedWithItsOwnExitCode) {
  std::string closed_url;
  {
    FakeOpenAi gone;
    closed_url = gone.base_url();
  }  // nothing listens on that port now
  // The same binary's start and exit, timed beside it: under load an ASan build takes a second
  // or more to start, which says nothing about retries.
  const auto baseline_started = std::chrono::steady_clock::now();
  ASSERT_EQ(testing::run_process({LLMGW_BINARY, "eval", "--help"}, {}).exit_code, 0);
  const auto baseline = std::chrono::steady_clock::now() - baseline_started;
  const auto started = std::chrono::steady_clock::now();
  auto argv = std::vector<std::string>{LLMGW_BINARY,         "eval",     "--dataset",
                                       dir_ + "/data.jsonl", "--rubric", dir_ + "/rubric.yaml",
                                       "--base-url",         closed_url};
  const auto result = testing::run_process(argv, {{"OLLAMA_HOST", ""}});
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.exit_code, 3) << result.err << result.out;
  EXPECT_NE(result.err.find("judge is unreachable"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("unreadable"), std::string::npos) << result.err;
  // Retrying a refused connection would take 0.5 + 1 + 2 s of backoff on top of the start.
  EXPECT_LT(elapsed - baseline, std::chrono::milliseconds{3000});
}

}  // namespace
}  // namespace llmgw
