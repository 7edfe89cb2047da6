#include "llmgw/routing/session_key.hpp"

#include <cctype>

#include "llmgw/util/text.hpp"

namespace llmgw::routing {
namespace {

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool is_token(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (const char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) ||
                    std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool is_chat_path(std::string_view path) {
  return path == "/api/chat" || path == "/v1/chat/completions" || path == "/v1/messages";
}

bool is_completion_path(std::string_view path) {
  return path == "/api/generate" || path == "/v1/completions";
}

}  // namespace

KeySourcesOrError parse_key_sources(std::string_view list, std::string_view session_header) {
  KeySourcesOrError result;
  std::size_t index = 0;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const auto entry = util::trim(list.substr(start, comma - start));
    start = comma + 1;
    if (entry.empty()) {
      continue;
    }
    KeySource source;
    result.error_index = index++;
    if (entry == "prefix") {
      source.kind = KeySource::Kind::prefix;
      source.label = "prefix";
    } else if (entry == "body:prompt_cache_key") {
      source.kind = KeySource::Kind::body_prompt_cache_key;
      source.label = "body:prompt_cache_key";
    } else if (entry == "header" || entry.starts_with("header:")) {
      const auto name = entry == "header" ? session_header : entry.substr(7);
      if (!is_token(name)) {
        result.error = "\"" + std::string{name} + "\" is not a valid HTTP header name";
        return result;
      }
      source.kind = KeySource::Kind::header;
      source.header = std::string{name};
      source.label = "header:" + lower(name);
    } else {
      result.error = "unknown key source \"" + std::string{entry} +
                     "\" (header, header:<name>, body:prompt_cache_key or prefix)";
      return result;
    }
    result.sources.push_back(std::move(source));
  }
  result.error_index.reset();
  if (result.sources.empty()) {
    result.error = "at least one key source is required";
  }
  return result;
}

ChosenKey choose_key(const std::vector<KeySource>& sources, const HeaderLookup& header,
                     std::string_view path, const std::string& body, std::size_t prefix_bytes,
                     std::optional<BodyFields>* scanned) {
  std::optional<BodyFields> own;  // scanned once, when a body source is reached
  std::optional<BodyFields>& fields = scanned != nullptr ? *scanned : own;
  const auto body_fields = [&]() -> const BodyFields& {
    if (!fields) {
      fields = scan_body(body, prefix_bytes);
    }
    return *fields;
  };
  for (const auto& source : sources) {
    switch (source.kind) {
      case KeySource::Kind::header:
        if (const auto value = header(source.header)) {
          if (const auto trimmed = util::trim(*value); !trimmed.empty()) {
            return {std::string{trimmed}, source.label};
          }
        }
        break;
      case KeySource::Kind::body_prompt_cache_key:
        if (!body.empty() && body_fields().valid_json && !body_fields().prompt_cache_key.empty()) {
          return {body_fields().prompt_cache_key, source.label};
        }
        break;
      case KeySource::Kind::prefix: {
        const bool chat = is_chat_path(path);
        if (body.empty() || (!chat && !is_completion_path(path))) {
          break;
        }
        const auto& f = body_fields();
        const std::string& start = chat ? f.first_user : f.prompt;
        if (!f.valid_json || start.empty()) {
          break;
        }
        // One string per conversation start; the NULs keep "ab"+"c" apart from "a"+"bc".
        std::string key{"prefix", 7};  // with its NUL
        key.append(f.model);
        if (f.model.find(':') == std::string::npos) {
          key.append(":latest");  // llama3.2 and llama3.2:latest are one model
        }
        key.push_back('\0');
        key.append(f.system).push_back('\0');
        key.append(start);
        return {std::move(key), source.label};
      }
    }
  }
  return {};
}

}  // namespace llmgw::routing
