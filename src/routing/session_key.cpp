#include "llmgw/routing/session_key.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

namespace llmgw::routing {
namespace {

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
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

// The SAX handler of scan_body: follows the path to the few fields it wants and copies only them.
// Frames: [root object] -> "messages" array -> message object -> "content" array -> part object;
// [root object] -> "system" array -> block object (Anthropic's system blocks).
class FieldScanner : public nlohmann::json_sax<nlohmann::json> {
 public:
  FieldScanner(BodyFields& out, std::size_t limit) : out_(out), limit_(limit) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  bool start_object(std::size_t) override {
    frames_.push_back({false, {}});
    return true;
  }
  bool end_object() override {
    if (in_message()) {
      finish_message();
    }
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    frames_.push_back({true, {}});
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return true;
  }
  bool key(string_t& name) override {
    frames_.back().key = name;
    return true;
  }

  bool string(string_t& value) override {
    const std::size_t depth = frames_.size();
    if (depth == 1) {
      const auto& key = frames_[0].key;
      if (key == "model") {
        out_.model = value;
      } else if (key == "prompt_cache_key") {
        out_.prompt_cache_key = value;
      } else if (key == "system") {
        append(out_.system, value);
      } else if (key == "prompt") {
        append(out_.prompt, value);
      }
    } else if (in_message()) {
      if (frames_[2].key == "role") {
        role_ = value;
      } else if (frames_[2].key == "content") {
        append(content_, value);
      }
    } else if (depth == 5 && root_key() == "messages" && frames_[2].key == "content" &&
               frames_[4].key == "text") {
      append(content_, value);
    } else if (depth == 3 && root_key() == "system" && frames_[1].is_array &&
               frames_[2].key == "text") {
      append(out_.system, value);
    }
    return true;
  }

 private:
  struct Frame {
    bool is_array;
    std::string key;
  };

  const std::string& root_key() const { return frames_[0].key; }
  bool in_message() const {
    return frames_.size() == 3 && !frames_[0].is_array && root_key() == "messages" &&
           frames_[1].is_array && !frames_[2].is_array;
  }
  void finish_message() {
    if (role_ == "user" && out_.first_user.empty()) {
      out_.first_user = content_;
    } else if (role_ == "system" && out_.system.empty()) {
      out_.system = content_;
    }
    role_.clear();
    content_.clear();
  }
  void append(std::string& to, const std::string& value) const {
    if (to.size() < limit_) {
      to.append(value, 0, limit_ - to.size());
    }
  }

  BodyFields& out_;
  std::size_t limit_;
  std::vector<Frame> frames_;
  std::string role_;
  std::string content_;
};

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
    const auto entry = trim(list.substr(start, comma - start));
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

BodyFields scan_body(std::string_view body, std::size_t prefix_bytes) {
  BodyFields fields;
  FieldScanner scanner(fields, prefix_bytes);
  fields.valid_json = nlohmann::json::sax_parse(body, &scanner);
  return fields;
}

ChosenKey choose_key(const std::vector<KeySource>& sources, const HeaderLookup& header,
                     std::string_view path, std::string_view body, std::size_t prefix_bytes) {
  std::optional<BodyFields> fields;  // scanned once, when a body source is reached
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
          if (const auto trimmed = trim(*value); !trimmed.empty()) {
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
