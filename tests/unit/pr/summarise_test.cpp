#include "llmgw/pr/summarise.hpp"

#include <gtest/gtest.h>

#include "fakes/function_chat_client.hpp"

namespace llmgw::pr {
namespace {

using fakes::FunctionChatClient;

// A patch of about `lines` added lines for `path`.
std::string patch_of(const std::string& path, int lines) {
  std::string patch = "@@ -0,0 +1," + std::to_string(lines) + " @@\n";
  for (int i = 0; i < lines; ++i) {
    patch += "+// " + path + " line " + std::to_string(i) + " of the new code\n";
  }
  return patch;
}

github::PullRequest make_pr(const std::vector<std::pair<std::string, int>>& files) {
  github::PullRequest pr;
  pr.repo = {"acme", "widgets"};
  pr.meta.number = 42;
  pr.meta.title = "Add a cache";
  pr.meta.body = "The cache makes lookups fast.";
  pr.meta.author = "octocat";
  pr.meta.head_ref = "cache";
  pr.meta.base_ref = "main";
  pr.meta.html_url = "https://github.com/acme/widgets/pull/42";
  for (const auto& [path, lines] : files) {
    github::ChangedFile file;
    file.filename = path;
    file.status = "added";
    file.additions = lines;
    file.patch = patch_of(path, lines);
    pr.files.push_back(std::move(file));
  }
  return pr;
}

// Answers a per-file prompt with "<path> changed", anything else with an overview.
llm::ChatResult summariser(const llm::ChatRequest& request) {
  const auto& prompt = FunctionChatClient::prompt_of(request);
  const auto marker = prompt.find("This is one file of the pull request:\n### ");
  if (marker != std::string::npos) {
    const auto start = marker + 42;
    return FunctionChatClient::answer(prompt.substr(start, prompt.find(' ', start) - start) +
                                      " gains generated code.");
  }
  return FunctionChatClient::answer(
      "## What changed and why\nA cache was added.\n## Risk areas\n- invalidation\n");
}

TEST(Summarise, ASmallPrIsSummarisedInOneStreamedCall) {
  const auto pr = make_pr({{"src/cache.cpp", 10}, {"src/cache.hpp", 3}});
  FunctionChatClient client{summariser};
  std::string streamed;
  SummariseOptions options;
  options.stream = true;
  options.session_id = "acme/widgets#42";
  options.on_text = [&](std::string_view text) { streamed += text; };
  const auto summary = summarise(pr, client, options);

  ASSERT_EQ(client.requests().size(), 1U);
  const auto& prompt = FunctionChatClient::prompt_of(client.requests()[0]);
  EXPECT_NE(prompt.find("src/cache.cpp line 9"), std::string::npos);
  EXPECT_NE(prompt.find("src/cache.hpp line 2"), std::string::npos);
  EXPECT_NE(prompt.find("The cache makes lookups fast."), std::string::npos);
  EXPECT_EQ(client.requests()[0].session_id, "acme/widgets#42");
  EXPECT_GT(client.tokens_streamed(), 1) << "the model's tokens must be streamed";
  EXPECT_EQ(streamed, summary.markdown);
  EXPECT_EQ(summary.markdown.rfind("# Add a cache\n", 0), 0U) << summary.markdown;
  EXPECT_NE(summary.markdown.find("## Risk areas\n- invalidation"), std::string::npos);
  EXPECT_FALSE(summary.map_reduce);
  EXPECT_TRUE(summary.left_out.empty());
}

TEST(Summarise, APrOverTheBudgetIsMappedPerFileThenReduced) {
  // 5 files of ~3 KB each (~1000 tokens); a 2048-token context cannot hold them together.
  const auto pr =
      make_pr({{"a.cpp", 60}, {"b.cpp", 60}, {"c.cpp", 60}, {"d.cpp", 60}, {"e.cpp", 60}});
  FunctionChatClient client{summariser};
  std::vector<std::string> progress;
  SummariseOptions options;
  options.context_tokens = 2048;
  options.on_progress = [&](const std::string& line) { progress.push_back(line); };
  const auto summary = summarise(pr, client, options);

  EXPECT_TRUE(summary.map_reduce);
  EXPECT_EQ(client.requests().size(), 6U) << "5 map calls and 1 reduce";
  EXPECT_EQ(summary.llm_calls, 6);
  for (const auto& request : client.requests()) {
    // Every prompt fits the context with room for the reply.
    std::int64_t bytes = 0;
    for (const auto& message : request.messages) {
      bytes += static_cast<std::int64_t>(message.content.size());
    }
    EXPECT_LE(bytes / 3, 2048 - 200) << FunctionChatClient::prompt_of(request).substr(0, 200);
  }
  const auto& reduce = FunctionChatClient::prompt_of(client.requests().back());
  EXPECT_NE(reduce.find("- c.cpp (added): c.cpp gains generated code."), std::string::npos)
      << reduce;
  EXPECT_NE(summary.markdown.find("## Files\n- `a.cpp` (added): a.cpp gains generated code."),
            std::string::npos)
      << summary.markdown;
  EXPECT_NE(summary.markdown.find("A cache was added."), std::string::npos);
  ASSERT_FALSE(progress.empty());
  EXPECT_NE(std::find(progress.begin(), progress.end(), "[3/5] c.cpp"), progress.end());
  EXPECT_TRUE(summary.left_out.empty());
}

TEST(Summarise, FilesBeyondTheMapLimitAreNamedAsLeftOut) {
  const auto pr = make_pr({{"big.cpp", 80}, {"small.cpp", 5}, {"mid.cpp", 40}, {"tiny.cpp", 2}});
  FunctionChatClient client{summariser};
  SummariseOptions options;
  options.context_tokens = 1024;
  options.max_map_files = 2;
  const auto summary = summarise(pr, client, options);
  EXPECT_EQ(summary.left_out, (std::vector<std::string>{"small.cpp", "tiny.cpp"}));
  const auto section = summary.markdown.find("## Files left out");
  ASSERT_NE(section, std::string::npos) << summary.markdown;
  EXPECT_NE(summary.markdown.find("- `small.cpp`", section), std::string::npos);
  EXPECT_NE(summary.markdown.find("- `tiny.cpp`", section), std::string::npos);
  EXPECT_EQ(to_json(summary)["left_out"], (nlohmann::json{"small.cpp", "tiny.cpp"}));
}

TEST(Summarise, AContextTooLongAnswerFallsBackToFileByFile) {
  const auto pr = make_pr({{"a.cpp", 10}, {"b.cpp", 10}});
  FunctionChatClient client{[](const llm::ChatRequest& request) {
    if (FunctionChatClient::prompt_of(request).find("The changes, file by file") !=
        std::string::npos) {
      throw llm::ContextTooLongError(413, "too long", "ollama: HTTP 413: too long");
    }
    return summariser(request);
  }};
  const auto summary = summarise(pr, client, SummariseOptions{});
  EXPECT_TRUE(summary.map_reduce);
  EXPECT_EQ(client.requests().size(), 4U) << "1 refused, 2 map calls, 1 reduce";
  EXPECT_EQ(summary.files.size(), 2U);
}

TEST(Summarise, AFileTheModelFindsTooLongIsShrunkThenLeftOutIfItStillDoesNotFit) {
  const auto pr = make_pr({{"a.cpp", 60}, {"b.cpp", 60}, {"huge.cpp", 60}});
  std::vector<std::size_t> huge_prompt_sizes;
  int a_refusals = 0;
  FunctionChatClient client{[&](const llm::ChatRequest& request) {
    const auto& prompt = FunctionChatClient::prompt_of(request);
    if (prompt.find("### huge.cpp") != std::string::npos) {
      huge_prompt_sizes.push_back(prompt.size());
      throw llm::ContextTooLongError(413, "too long", "HTTP 413");
    }
    if (prompt.find("### a.cpp") != std::string::npos && a_refusals++ == 0) {
      throw llm::ContextTooLongError(413, "too long", "HTTP 413");
    }
    return summariser(request);
  }};
  SummariseOptions options;
  options.context_tokens = 1024;
  const auto summary = summarise(pr, client, options);
  ASSERT_EQ(huge_prompt_sizes.size(), 3U) << "three tries, each smaller";
  EXPECT_GT(huge_prompt_sizes[0], huge_prompt_sizes[1]);
  EXPECT_GT(huge_prompt_sizes[1], huge_prompt_sizes[2]);
  EXPECT_EQ(summary.left_out, (std::vector<std::string>{"huge.cpp"}));
  ASSERT_EQ(summary.files.size(), 2U);
  EXPECT_EQ(summary.files[0].summary, "a.cpp gains generated code.") << "shrunk and retried";
  EXPECT_NE(summary.markdown.find("## Files left out"), std::string::npos);
}

TEST(Summarise, JsonModeAsksForASchemaAndFillsTheFields) {
  const auto pr = make_pr({{"src/cache.cpp", 10}});
  FunctionChatClient client{[](const llm::ChatRequest&) {
    return FunctionChatClient::answer(
        R"({"what_changed": "Adds a cache.", "why": "Speed.", "risk_areas": ["staleness"],
            "files": [{"path": "src/cache.cpp", "summary": "The cache itself."}]})");
  }};
  SummariseOptions options;
  options.json = true;
  const auto summary = summarise(pr, client, options);
  ASSERT_TRUE(client.requests()[0].json_schema.has_value());
  const auto json = to_json(summary);
  EXPECT_EQ(json["what_changed"], "Adds a cache.");
  EXPECT_EQ(json["risk_areas"], (nlohmann::json{"staleness"}));
  EXPECT_EQ(json["files"][0]["status"], "added");
  EXPECT_EQ(json["files"][0]["summary"], "The cache itself.");
  EXPECT_EQ(json["usage"]["llm_calls"], 1);
  EXPECT_NE(summary.markdown.find("- `src/cache.cpp` (added): The cache itself."),
            std::string::npos);
}

}  // namespace
}  // namespace llmgw::pr
