#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "llmgw/llm/chat_client.hpp"
#include "support/wait.hpp"

namespace llmgw::llm {
namespace {

EnvLookup env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    const auto it = values.find(name);
    return it == values.end() ? std::nullopt : std::optional{it->second};
  };
}

TEST(ProviderConfig, OllamaDefaultsToLocalhostAndTheTaskModel) {
  const auto config = resolve_provider_config(Provider::ollama, "llama3.2", {}, env_of({}));
  EXPECT_EQ(config.provider, Provider::ollama);
  EXPECT_EQ(config.base_url, "http://127.0.0.1:11434");
  EXPECT_EQ(config.model, "llama3.2");
  EXPECT_TRUE(config.api_key.empty());
}

TEST(ProviderConfig, OllamaHostAcceptsHostPortHostOnlyAndUrls) {
  const auto resolve = [](std::string host) {
    return resolve_provider_config(Provider::ollama, "m", {}, env_of({{"OLLAMA_HOST", host}}))
        .base_url;
  };
  EXPECT_EQ(resolve("gpu-box:11500"), "http://gpu-box:11500");
  EXPECT_EQ(resolve("10.0.0.7"), "http://10.0.0.7:11434");
  EXPECT_EQ(resolve("http://gateway.local:8000/"), "http://gateway.local:8000");
  EXPECT_EQ(resolve("https://ollama.example.com"), "https://ollama.example.com");
}

TEST(ProviderConfig, FlagsWinOverTheEnvironmentAndAGatewayReplacesOllamaHost) {
  ProviderOverrides overrides;
  overrides.gateway = "http://127.0.0.1:8000";
  auto config = resolve_provider_config(Provider::ollama, "m", overrides,
                                        env_of({{"OLLAMA_HOST", "elsewhere:1"}}));
  EXPECT_EQ(config.base_url, "http://127.0.0.1:8000");
  overrides.base_url = "http://direct:11434/";
  config = resolve_provider_config(Provider::ollama, "m", overrides, env_of({}));
  EXPECT_EQ(config.base_url, "http://direct:11434");
}

TEST(ProviderConfig, GroqReadsItsKeyAndBaseUrlFromTheEnvironment) {
  ProviderOverrides overrides;
  overrides.provider = "groq";
  auto config = resolve_provider_config(Provider::ollama, "llama3.2", overrides,
                                        env_of({{"GROQ_API_KEY", "gsk_secret"}}));
  EXPECT_EQ(config.provider, Provider::openai);
  EXPECT_EQ(config.base_url, "https://api.groq.com/openai/v1");
  EXPECT_EQ(config.api_key, "gsk_secret");
  // Switching provider switches the default model too: llama3.2 is not a Groq model.
  EXPECT_EQ(config.model, "llama-3.3-70b-versatile");

  config = resolve_provider_config(
      Provider::openai, "gpt-x", {},
      env_of({{"GROQ_BASE_URL", "http://127.0.0.1:9999/v1"}, {"OPENAI_API_KEY", "sk-1"}}));
  EXPECT_EQ(config.base_url, "http://127.0.0.1:9999/v1");
  EXPECT_EQ(config.api_key, "sk-1");
  EXPECT_EQ(config.model, "gpt-x");
}

TEST(ProviderConfig, ReadsTheKeyFromAFileWithoutEchoingIt) {
  const auto dir = testing::make_temp_dir("provider-key");
  const auto path = dir + "/key";
  std::ofstream{path} << "sk-from-file\n";
  ProviderOverrides overrides;
  overrides.provider = "openai";
  overrides.api_key_file = path;
  EXPECT_EQ(resolve_provider_config(Provider::openai, "m", overrides, env_of({})).api_key,
            "sk-from-file");

  overrides.api_key_file = dir + "/missing";
  try {
    resolve_provider_config(Provider::openai, "m", overrides, env_of({}));
    FAIL() << "a missing key file must be refused";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string{error.what()}.find("--api-key-file"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(ProviderConfig, RefusesUnknownProvidersTinyContextsAndNonHttpUrls) {
  ProviderOverrides overrides;
  overrides.provider = "anthropic";
  EXPECT_THROW(resolve_provider_config(Provider::ollama, "m", overrides, env_of({})),
               std::invalid_argument);
  overrides = {};
  overrides.context_tokens = 10;
  EXPECT_THROW(resolve_provider_config(Provider::ollama, "m", overrides, env_of({})),
               std::invalid_argument);
  ProviderConfig config;
  config.base_url = "ftp://x";
  EXPECT_THROW(make_chat_client(config), std::invalid_argument);
}

TEST(ProviderConfig, APasswordInTheBaseUrlIsNeverShown) {
  for (const auto provider : {Provider::ollama, Provider::openai}) {
    ProviderConfig config;
    config.provider = provider;
    config.base_url = "http://user:s3cret@127.0.0.1:9/v1";
    config.model = "m";
    const auto described = make_chat_client(config)->describe();
    EXPECT_EQ(described.find("s3cret"), std::string::npos) << described;
    EXPECT_NE(described.find("http://***@127.0.0.1:9/v1"), std::string::npos) << described;
  }
  ProviderConfig config;
  config.base_url = "ftp://user:s3cret@x";
  try {
    make_chat_client(config);
    ADD_FAILURE() << "ftp must be refused";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string{error.what()}.find("s3cret"), std::string::npos) << error.what();
  }
}

TEST(ProviderConfig, RedactReplacesEveryOccurrenceOfTheSecret) {
  EXPECT_EQ(redact("key gsk_1 and gsk_1 again", "gsk_1"), "key *** and *** again");
  EXPECT_EQ(redact("nothing", ""), "nothing");
}

}  // namespace
}  // namespace llmgw::llm
