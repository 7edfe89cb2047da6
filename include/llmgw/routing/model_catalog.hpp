#pragma once

// Which models one node holds (routing by model, DESIGN.md §1.3): a pure value, parsed from the
// node's own listings and published per node as std::shared_ptr<const NodeModels>.
//
//   ollama node   /api/tags -> on disk; /api/ps -> loaded (a subset of what is on disk)
//   openai node   /v1/models -> on disk and loaded (llama-server and vLLM serve what they list)
//
// Names are canonical: a name without a tag means its `latest` tag, so `llama3.2` and
// `llama3.2:latest` are one model. Both lists are sorted, so a lookup is a binary search over a
// few strings, with no allocation once the requested name is canonical.
//
// A node's entry is `current` while its last fetch succeeded. An entry that is not current (never
// fetched, or its last fetch failed) says nothing: such a node counts as holding every model, so
// that a stale view cannot black-hole traffic (server/catalog.hpp).
//
// Thread safety: immutable once published.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::routing {

// "llama3.2" -> "llama3.2:latest"; "qwen2.5:0.5b" unchanged. A ':' inside a registry host with a
// port ("host:5000/ns/m") is not a tag: only a ':' after the last '/' is.
std::string canonical_model(std::string_view name);

struct NodeModels {
  std::vector<std::string> on_disk;  // canonical, sorted, unique
  std::vector<std::string> loaded;   // canonical, sorted, unique; subset of on_disk
  bool current = false;              // the last fetch succeeded: the lists can be trusted
  std::string error;                 // why the last fetch failed (empty when current)
  std::chrono::system_clock::time_point fetched_at{};  // of the lists (the last success)

  // `canonical`: a canonical_model() name.
  bool holds(std::string_view canonical) const noexcept;
  bool has_loaded(std::string_view canonical) const noexcept;

  // A copy with `canonical` removed from both lists (a node answered 404 "model not found").
  NodeModels without(std::string_view canonical) const;
  // A copy with `canonical` marked loaded (and on disk): a node just served it.
  NodeModels with_loaded(std::string_view canonical) const;
};

// Parsers of the listings; nullopt when the body is not the expected shape. Each returns the
// canonical names, sorted and unique.
//   /api/tags, /api/ps:  {"models":[{"name":"llama3.2:latest","model":"llama3.2:latest",...}]}
//   /v1/models:          {"object":"list","data":[{"id":"llama3.2","object":"model",...}]}
std::optional<std::vector<std::string>> parse_ollama_models(std::string_view body);
std::optional<std::vector<std::string>> parse_openai_models(std::string_view body);

// True when a node's 404 body says the model was not found: Ollama's
// {"error":"model \"x\" not found, try pulling it first"}, its OpenAI-compatible error object,
// vLLM's "The model `x` does not exist." (the text is matched, case-insensitively).
bool says_model_not_found(std::string_view body) noexcept;

}  // namespace llmgw::routing
