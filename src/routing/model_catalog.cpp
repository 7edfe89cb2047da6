#include "llmgw/routing/model_catalog.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace llmgw::routing {
namespace {

using nlohmann::json;

void sort_unique(std::vector<std::string>& names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
}

bool sorted_contains(const std::vector<std::string>& names, std::string_view name) noexcept {
  const auto it = std::lower_bound(names.begin(), names.end(), name,
                                   [](const std::string& a, std::string_view b) { return a < b; });
  return it != names.end() && *it == name;
}

void insert_sorted(std::vector<std::string>& names, std::string_view name) {
  const auto it = std::lower_bound(names.begin(), names.end(), name,
                                   [](const std::string& a, std::string_view b) { return a < b; });
  if (it == names.end() || *it != name) {
    names.insert(it, std::string{name});
  }
}

// The string field `field` of every object in body[array_key]; nullopt when the shape differs.
std::optional<std::vector<std::string>> names_in(std::string_view body, const char* array_key,
                                                 const char* field, const char* fallback) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return std::nullopt;
  }
  const auto list = parsed.find(array_key);
  if (list == parsed.end() || !(list->is_array() || list->is_null())) {
    return std::nullopt;
  }
  std::vector<std::string> names;
  if (list->is_null()) {
    return names;  // Ollama answers {"models":null} on an empty node in some versions
  }
  for (const auto& entry : *list) {
    if (!entry.is_object()) {
      return std::nullopt;
    }
    auto name = entry.find(field);
    if ((name == entry.end() || !name->is_string()) && fallback != nullptr) {
      name = entry.find(fallback);
    }
    if (name == entry.end() || !name->is_string()) {
      return std::nullopt;
    }
    names.push_back(canonical_model(name->get_ref<const std::string&>()));
  }
  sort_unique(names);
  return names;
}

}  // namespace

std::string canonical_model(std::string_view name) {
  std::string canonical{name};
  const auto slash = name.rfind('/');
  const auto tag = name.find(':', slash == std::string_view::npos ? 0 : slash);
  if (tag == std::string_view::npos && !name.empty()) {
    canonical.append(":latest");
  }
  return canonical;
}

bool NodeModels::holds(std::string_view canonical) const noexcept {
  return sorted_contains(on_disk, canonical);
}

bool NodeModels::has_loaded(std::string_view canonical) const noexcept {
  return sorted_contains(loaded, canonical);
}

NodeModels NodeModels::without(std::string_view canonical) const {
  NodeModels next = *this;
  std::erase(next.on_disk, canonical);
  std::erase(next.loaded, canonical);
  return next;
}

NodeModels NodeModels::with_loaded(std::string_view canonical) const {
  NodeModels next = *this;
  insert_sorted(next.on_disk, canonical);
  insert_sorted(next.loaded, canonical);
  return next;
}

std::optional<std::vector<std::string>> parse_ollama_models(std::string_view body) {
  return names_in(body, "models", "name", "model");
}

std::optional<std::vector<std::string>> parse_openai_models(std::string_view body) {
  return names_in(body, "data", "id", nullptr);
}

bool says_model_not_found(std::string_view body) noexcept {
  const std::string_view text = body.substr(0, 4096);  // an error body is short
  const auto contains = [text](std::string_view needle) {
    const auto it = std::search(
        text.begin(), text.end(), needle.begin(), needle.end(),
        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
    return it != text.end();
  };
  return contains("model") && (contains("not found") || contains("does not exist"));
}

}  // namespace llmgw::routing
