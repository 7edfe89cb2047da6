// The session key cascade (routing/session_key.hpp): each source, their order, the fingerprint of
// a conversation's start, and bodies that are not what they claim.

#include "llmgw/routing/session_key.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

namespace llmgw::routing {
namespace {

using nlohmann::json;

constexpr std::string_view kDefault =
    "header,header:x-session-affinity,header:x-claude-code-session-id,header:session-id,"
    "body:prompt_cache_key,prefix";

// The default list, alive for the whole run: a ChosenKey's source views its label.
const std::vector<KeySource>& sources() {
  static const std::vector<KeySource> parsed = parse_key_sources(kDefault, "X-Session-ID").sources;
  return parsed;
}

struct Request {
  std::map<std::string, std::string> headers;  // lower-case names
  std::string path = "/api/chat";
  std::string body;

  ChosenKey key(const std::vector<KeySource>& from = sources()) const {
    const auto lookup = [this](std::string_view name) -> std::optional<std::string_view> {
      std::string lower{name};
      for (auto& c : lower) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      const auto it = headers.find(lower);
      if (it == headers.end()) {
        return std::nullopt;
      }
      return std::string_view{it->second};
    };
    return choose_key(from, lookup, path, body, 1024);
  }
};

std::string chat_body(const json& messages, std::string_view model = "llama3.2") {
  return json{{"model", model}, {"messages", messages}, {"stream", true}}.dump();
}

TEST(SessionKey, EachAgentHeaderIsASourceInTheDefaultOrder) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"x-session-id", "header:x-session-id"},
      {"x-session-affinity", "header:x-session-affinity"},
      {"x-claude-code-session-id", "header:x-claude-code-session-id"},
      {"session-id", "header:session-id"}};
  for (const auto& [name, label] : cases) {
    Request request{{{name, "  ses-1 "}}, "/api/chat", ""};
    const auto key = request.key();
    EXPECT_EQ(key.key, "ses-1") << name;
    EXPECT_EQ(key.source, label);
  }
  // X-Session-ID wins over the agents' headers; opencode's wins over Codex's.
  Request both{
      {{"session-id", "codex"}, {"x-session-affinity", "opencode"}, {"x-session-id", "own"}},
      "/api/chat",
      ""};
  EXPECT_EQ(both.key().key, "own");
  both.headers.erase("x-session-id");
  EXPECT_EQ(both.key().key, "opencode");
}

TEST(SessionKey, PromptCacheKeyInTheBodyComesBeforeTheFingerprint) {
  Request request;
  request.path = "/v1/chat/completions";
  request.body = json{
      {"model", "m"},
      {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
      {"prompt_cache_key",
       "pck-9"}}.dump();
  EXPECT_EQ(request.key().key, "pck-9");
  EXPECT_EQ(request.key().source, "body:prompt_cache_key");
  request.headers["x-session-id"] = "header-wins";
  EXPECT_EQ(request.key().key, "header-wins");
}

TEST(SessionKey, TheFingerprintIsTheSameForEveryTurnOfAConversation) {
  json messages = json::array({{{"role", "system"}, {"content", "You are terse."}},
                               {{"role", "user"}, {"content", "hello"}}});
  Request turn{{}, "/api/chat", chat_body(messages)};
  const auto first = turn.key();
  EXPECT_EQ(first.source, "prefix");
  ASSERT_FALSE(first.key.empty());
  for (int i = 0; i < 7; ++i) {
    messages.push_back({{"role", "assistant"}, {"content", "answer " + std::to_string(i)}});
    messages.push_back({{"role", "user"}, {"content", "question " + std::to_string(i)}});
    turn.body = chat_body(messages);
    EXPECT_EQ(turn.key().key, first.key) << "turn " << i + 2;
  }
  // Another conversation, another model or another system prompt: another key.
  Request other{
      {}, "/api/chat", chat_body(json::array({{{"role", "user"}, {"content", "goodbye"}}}))};
  EXPECT_NE(other.key().key, first.key);
  turn.body = chat_body(messages, "qwen2.5:0.5b");
  EXPECT_NE(turn.key().key, first.key);
  // llama3.2 and llama3.2:latest are one model.
  Request tagged{{},
                 "/api/chat",
                 chat_body(json::array({{{"role", "system"}, {"content", "You are terse."}},
                                        {{"role", "user"}, {"content", "hello"}}}),
                           "llama3.2:latest")};
  EXPECT_EQ(tagged.key().key, first.key);
}

TEST(SessionKey, FingerprintsOfOtherBodyShapes) {
  // OpenAI content parts and Anthropic system blocks.
  Request parts{
      {},
      "/v1/messages",
      json{{"model", "m"},
           {"system", json::array({{{"type", "text"}, {"text", "be kind"}}})},
           {"messages",
            json::array({{{"role", "user"},
                          {"content", json::array({{{"type", "text"}, {"text", "hi there"}}})}}})}}
          .dump()};
  const auto fields = scan_body(parts.body, 1024);
  EXPECT_EQ(fields.system, "be kind");
  EXPECT_EQ(fields.first_user, "hi there");
  EXPECT_EQ(parts.key().source, "prefix");
  // /api/generate: the first prefix_bytes of the prompt.
  Request generate{
      {}, "/api/generate", json{{"model", "m"}, {"prompt", std::string(5000, 'a')}}.dump()};
  const auto long_prompt = generate.key();
  generate.body =
      json{{"model", "m"}, {"prompt", std::string(1024, 'a') + "different tail"}}.dump();
  EXPECT_EQ(generate.key().key, long_prompt.key) << "only the first 1024 bytes count";
}

TEST(SessionKey, NoKeyWhenNothingAnswers) {
  Request tags{{}, "/api/tags", ""};
  EXPECT_EQ(tags.key().source, "none");
  EXPECT_TRUE(tags.key().key.empty());
  Request broken{{}, "/api/chat", R"({"model":"m","messages":[{"role":"user","content":"hi")"};
  EXPECT_EQ(broken.key().source, "none") << "a truncated body has no trustworthy start";
  Request embed{{}, "/api/embed", R"({"model":"m","input":"x"})"};
  EXPECT_EQ(embed.key().source, "none");
}

// scan_body reads the body in place (simdjson), so what it returns must not depend on whether the
// body has room past its end, nor on where "model" sits.
TEST(SessionKey, ScanFindsTheModelAfterAMegabytePrompt) {
  const std::string prompt(1024 * 1024, 'p');
  const std::string last = json{{"prompt", prompt}, {"stream", false}}.dump();
  std::string body = last.substr(0, last.size() - 1) + R"(,"model":"llama3.2"})";
  const auto unpadded = scan_body(std::string_view{body}, 1024);
  body.reserve(body.size() + body_scan_padding());
  const auto in_place = scan_body(body, 1024);
  for (const auto* fields : {&unpadded, &in_place}) {
    EXPECT_TRUE(fields->valid_json);
    EXPECT_EQ(fields->model, "llama3.2");
    EXPECT_EQ(fields->prompt, prompt.substr(0, 1024)) << "at most prefix_bytes are kept";
  }
  const auto model_only = scan_body(body, 1024, true);
  EXPECT_EQ(model_only.model, "llama3.2");
  EXPECT_TRUE(model_only.valid_json);
}

TEST(SessionKey, ScanUnescapesIdentifiersAndKeepsTextAsWritten) {
  const std::string body = R"({"model":"llama3.2\u003alatest","prompt_cache_key":"a\"b",)"
                           R"("messages":[{"content":"line\none","role":"user"}]})";
  const auto fields = scan_body(body, 1024);
  EXPECT_TRUE(fields.valid_json);
  EXPECT_EQ(fields.model, "llama3.2:latest");
  EXPECT_EQ(fields.prompt_cache_key, "a\"b");
  EXPECT_EQ(fields.first_user, "line\\none") << "text is fingerprinted as the client wrote it";
}

TEST(SessionKey, ScanRejectsWhatIsNotOneJsonObject) {
  for (const std::string& body :
       {std::string{R"({"model":"m","messages":[{"role":"user","content":"hi"}])"},
        std::string{R"(["model","m"])"}, std::string{"{\"model\":\"m\xff\"}"}, std::string{}}) {
    EXPECT_FALSE(scan_body(body, 1024).valid_json) << body;
  }
}

TEST(SessionKey, AGrowingGeneratePromptKeepsItsKeyWhateverItsLength) {
  // /api/generate clients resend the whole history as the prompt: the fingerprint must be the
  // same at 2 KB and at 200 KB, escapes included.
  const std::string start = "System: be brief.\n\"quoted\"\n";
  Request turn{
      {}, "/api/generate", json{{"model", "m"}, {"prompt", start + std::string(2000, 'x')}}.dump()};
  const auto first = turn.key();
  turn.body = json{{"model", "m"}, {"prompt", start + std::string(200'000, 'x')}}.dump();
  EXPECT_EQ(turn.key().key, first.key);
  EXPECT_EQ(first.source, "prefix");
}

TEST(SessionKey, ParseReportsTheBadEntry) {
  const auto unknown = parse_key_sources("header, cookie:x", "X-Session-ID");
  ASSERT_TRUE(unknown.error_index.has_value());
  EXPECT_EQ(*unknown.error_index, 1U);
  EXPECT_NE(unknown.error.find("unknown key source \"cookie:x\""), std::string::npos);
  const auto bad_name = parse_key_sources("header:bad name", "X-Session-ID");
  EXPECT_NE(bad_name.error.find("not a valid HTTP header name"), std::string::npos);
  EXPECT_FALSE(parse_key_sources(" , ", "X-Session-ID").error.empty());
  const auto only = parse_key_sources("prefix", "X-Session-ID");
  ASSERT_EQ(only.sources.size(), 1U);
  EXPECT_EQ(only.sources[0].label, "prefix");
}

}  // namespace
}  // namespace llmgw::routing
