#include "llmgw/routing/model_catalog.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace llmgw::routing {
namespace {

using ::testing::ElementsAre;

TEST(ModelCatalog, NamesWithoutATagMeanLatest) {
  EXPECT_EQ(canonical_model("llama3.2"), "llama3.2:latest");
  EXPECT_EQ(canonical_model("llama3.2:latest"), "llama3.2:latest");
  EXPECT_EQ(canonical_model("qwen2.5:0.5b"), "qwen2.5:0.5b");
  EXPECT_EQ(canonical_model("registry.local:5000/team/model"),
            "registry.local:5000/team/model:latest");
  EXPECT_EQ(canonical_model("hf.co/org/m:Q4_K_M"), "hf.co/org/m:Q4_K_M");
}

TEST(ModelCatalog, ParsesOllamaTagsAndPs) {
  const auto names =
      parse_ollama_models(R"({"models":[{"name":"qwen2.5:0.5b","model":"qwen2.5:0.5b","size":1},)"
                          R"({"name":"llama3.2","model":"llama3.2"},{"name":"llama3.2:latest"}]})");
  ASSERT_TRUE(names.has_value());
  EXPECT_THAT(*names, ElementsAre("llama3.2:latest", "qwen2.5:0.5b"));
  EXPECT_THAT(*parse_ollama_models(R"({"models":[]})"), ElementsAre());
  EXPECT_FALSE(parse_ollama_models("not json").has_value());
  EXPECT_FALSE(parse_ollama_models(R"({"data":[]})").has_value());
  EXPECT_FALSE(parse_ollama_models(R"({"models":[{"size":1}]})").has_value());
}

TEST(ModelCatalog, ParsesOpenAiModels) {
  const auto names = parse_openai_models(
      R"({"object":"list","data":[{"id":"gemma-3-4b","object":"model","owned_by":"llamacpp"}]})");
  ASSERT_TRUE(names.has_value());
  EXPECT_THAT(*names, ElementsAre("gemma-3-4b:latest"));
  EXPECT_FALSE(parse_openai_models(R"({"models":[]})").has_value());
}

TEST(ModelCatalog, LookupsAndCorrections) {
  NodeModels models;
  models.on_disk = {"llama3.2:latest", "qwen2.5:0.5b"};
  models.loaded = {"qwen2.5:0.5b"};
  models.current = true;
  EXPECT_TRUE(models.holds("llama3.2:latest"));
  EXPECT_FALSE(models.holds("llama3.2"));  // callers pass canonical names
  EXPECT_FALSE(models.has_loaded("llama3.2:latest"));
  const auto loaded = models.with_loaded("llama3.2:latest");
  EXPECT_THAT(loaded.loaded, ElementsAre("llama3.2:latest", "qwen2.5:0.5b"));
  const auto without = loaded.without("qwen2.5:0.5b");
  EXPECT_THAT(without.on_disk, ElementsAre("llama3.2:latest"));
  EXPECT_THAT(without.loaded, ElementsAre("llama3.2:latest"));
  EXPECT_TRUE(without.current);
}

TEST(ModelCatalog, RecognisesModelNotFoundBodies) {
  EXPECT_TRUE(says_model_not_found(R"({"error":"model \"x\" not found, try pulling it first"})"));
  EXPECT_TRUE(says_model_not_found(
      R"({"error":{"message":"The model `x` does not exist.","type":"NotFoundError"}})"));
  EXPECT_TRUE(says_model_not_found(R"({"error":"model 'x' not found"})"));
  EXPECT_FALSE(says_model_not_found("404 page not found"));
  EXPECT_FALSE(says_model_not_found(R"({"error":"file not found"})"));
}

}  // namespace
}  // namespace llmgw::routing
