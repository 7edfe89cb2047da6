// `llmgw-fakes`: the test fakes as a standalone process, for trying the PR workflow end to end
// without GitHub or a model (`make demo-pr`, scripts/demo-pr).
//
// It serves the fake GitHub API with the sample pull request acme/widgets#42 and a scripted model
// that speaks both Ollama's /api/chat and the OpenAI-compatible /v1/chat/completions. The model
// summarises (Markdown, JSON, per file), drives the review agent with tool calls (list the files,
// read a diff, comment on the removed lock, finish), and judges eval cases. It prints
//   GITHUB_API_URL=http://127.0.0.1:PORT
//   OLLAMA_HOST=http://127.0.0.1:PORT
//   OPENAI_BASE_URL=http://127.0.0.1:PORT/v1
// and serves until SIGINT or SIGTERM.

#include <signal.h>

#include <algorithm>
#include <iostream>

#include "fakes/fake_github.hpp"
#include "fakes/fake_openai.hpp"

namespace {

using llmgw::fakes::FakeReply;
using llmgw::fakes::RecordedRequest;

std::string last_user_prompt(const nlohmann::json& messages) {
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if ((*it).value("role", "") == "user") {
      return (*it).value("content", "");
    }
  }
  return {};
}

// The JSON Schema the request asks for: Ollama's `format` or OpenAI's response_format.
nlohmann::json requested_schema(const nlohmann::json& body) {
  if (body.contains("format")) {
    return body["format"];
  }
  if (body.contains("response_format") && body["response_format"].contains("json_schema")) {
    return body["response_format"]["json_schema"].value("schema", nlohmann::json::object());
  }
  return nullptr;
}

std::string between(const std::string& text, const std::string& open, const std::string& close) {
  const auto start = text.find(open);
  if (start == std::string::npos) {
    return {};
  }
  const auto from = start + open.size();
  return text.substr(from, text.find(close, from) - from);
}

FakeReply review_step(const nlohmann::json& messages) {
  const auto tool_results = std::count_if(messages.begin(), messages.end(), [](const auto& m) {
    return m.value("role", "") == "tool";
  });
  // An incremental re-review after the second push lists only src/cache.hpp.
  const auto overview = messages.size() > 1 ? messages[1].value("content", "") : std::string{};
  if (overview.find("src/cache.cpp") == std::string::npos) {
    if (tool_results == 0) {
      return FakeReply::tool_call("get_file_diff", {{"path", "src/cache.hpp"}}, "call_1");
    }
    if (tool_results == 1) {
      return FakeReply::tool_call(
          "add_comment",
          {{"path", "src/cache.hpp"},
           {"line", 5},
           {"severity", "suggestion"},
           {"body", "Say what unit cache_capacity() counts (entries or bytes)."}},
          "call_2");
    }
    return FakeReply::tool_call(
        "finish", {{"summary", "The new commit declares cache_capacity(); the unit is unclear."}},
        "call_3");
  }
  switch (tool_results) {
    case 0:
      return FakeReply::tool_call("list_files", nlohmann::json::object(), "call_1");
    case 1:
      return FakeReply::tool_call("get_file_diff", {{"path", "src/cache.cpp"}}, "call_2");
    case 2:
      return FakeReply::tool_call(
          "add_comment",
          {{"path", "src/cache.cpp"},
           {"line", 17},
           {"side", "LEFT"},
           {"severity", "error"},
           {"body",
            "put() no longer takes `mutex_`, while get() and evict() still do: concurrent "
            "put() and evict() race on `entries_`. Restore the lock_guard."}},
          "call_3");
    default:
      return FakeReply::tool_call(
          "finish",
          {{"summary",
            "Adds an LRU cache header and removes an old doc. One real problem: "
            "Cache::put() lost its lock, which makes the cache racy."}},
          "call_4");
  }
}

FakeReply judge(const std::string& prompt, const nlohmann::json& schema) {
  if (prompt.find("<candidate_A>") != std::string::npos) {
    // Prefers the more specific (longer) candidate, whichever side it is shown on.
    const auto a = between(prompt, "<candidate_A>\n", "\n</candidate_A>");
    const auto b = between(prompt, "<candidate_B>\n", "\n</candidate_B>");
    const char* winner = a.size() > b.size() ? "A" : b.size() > a.size() ? "B" : "tie";
    return FakeReply::text(
        nlohmann::json{{"reason", "the winner is more specific"}, {"winner", winner}}.dump());
  }
  const auto candidate = between(prompt, "<candidate>\n", "\n</candidate>");
  const int score = std::clamp(static_cast<int>(candidate.size() / 40), 2, 9);
  nlohmann::json scores = nlohmann::json::object();
  const auto criteria = schema["properties"]["scores"].value("required", nlohmann::json::array());
  for (const auto& name : criteria) {
    scores[name.get<std::string>()] = {
        {"reason", score >= 6 ? "specific and grounded in the diff" : "vague, not actionable"},
        {"score", score}};
  }
  return FakeReply::text(nlohmann::json{{"scores", scores}}.dump());
}

FakeReply respond(const RecordedRequest& request) {
  const auto& body = request.body;
  if (!body.is_object()) {
    return FakeReply::error(400, "the body is not JSON");
  }
  const auto messages = body.value("messages", nlohmann::json::array());
  if (body.contains("tools")) {
    return review_step(messages);
  }
  const auto prompt = last_user_prompt(messages);
  const auto schema = requested_schema(body);
  if (prompt.find("<candidate") != std::string::npos) {
    return judge(prompt, schema);
  }
  const auto file = between(prompt, "This is one file of the pull request:\n### ", " ");
  if (!file.empty()) {
    return FakeReply::text("Changes " + file + " (scripted one-line summary).");
  }
  if (!schema.is_null()) {
    nlohmann::json answer{{"what_changed", "Adds an LRU cache header; put() drops its lock."},
                          {"why", "To make lookups faster."},
                          {"risk_areas", {"put() is no longer thread-safe"}}};
    if (schema["properties"].contains("files")) {
      answer["files"] = {{{"path", "src/cache.cpp"}, {"summary", "put() loses its lock_guard."}},
                         {{"path", "src/cache.hpp"}, {"summary", "Declares the cache."}},
                         {{"path", "docs/old.md"}, {"summary", "Removed."}}};
    }
    return FakeReply::text(answer.dump());
  }
  return FakeReply::text(
      "## What changed and why\nAdds `src/cache.hpp` declaring an LRU cache, removes "
      "`docs/old.md`, and changes `Cache::put()` so that it no longer locks `mutex_`.\n\n"
      "## Risk areas\n- `put()` now races with `get()` and `evict()`.\n\n"
      "## Files\n- `src/cache.cpp`: put() loses its lock_guard.\n- `src/cache.hpp`: declares the "
      "cache.\n- `docs/old.md`: removed.\n");
}

}  // namespace

int main() {
  // Block the stop signals before any server thread starts, so that sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  llmgw::fakes::FakeGithub github;
  github.add_pull("acme/widgets", llmgw::fakes::sample_fake_pull());
  // scripts/demo-pr pushes a second commit (POST /_fake/push/acme/widgets/42) to show an
  // incremental re-review.
  github.allow_demo_push("acme/widgets", llmgw::fakes::sample_fake_pull_second_push());
  llmgw::fakes::FakeOpenAi model;
  model.set_responder(respond);

  std::cout << "GITHUB_API_URL=" << github.base_url() << "\n"
            << "OLLAMA_HOST=" << model.base_url() << "\n"
            << "OPENAI_BASE_URL=" << model.openai_base_url() << "\n"
            << std::flush;
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "llmgw-fakes: served " << model.request_count() << " model request(s); stopping\n";
  return 0;
}
