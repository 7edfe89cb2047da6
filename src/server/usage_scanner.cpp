#include "llmgw/server/usage_scanner.hpp"

#include <simdjson.h>

#include <charconv>
#include <optional>
#include <utility>

namespace llmgw::server {
namespace {

namespace od = simdjson::ondemand;
using simdjson::SUCCESS;

// A count or a duration: a whole number exactly, a fraction truncated when it fits; a negative
// number, one beyond uint64 (a cast would be undefined) or anything else counts as 0. Read from
// the number's own text, so that no getter consumes the value before its type is known.
std::uint64_t unsigned_number(od::value value) {
  od::json_type type{};
  if (value.type().get(type) != SUCCESS || type != od::json_type::number) {
    return 0;
  }
  std::string_view raw = value.raw_json_token();
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r')) {
    raw.remove_suffix(1);
  }
  const char* const end = raw.data() + raw.size();
  std::uint64_t whole = 0;
  if (const auto [ptr, ec] = std::from_chars(raw.data(), end, whole);
      ec == std::errc{} && ptr == end) {
    return whole;
  }
  double real = 0;
  if (const auto [ptr, ec] = std::from_chars(raw.data(), end, real);
      ec == std::errc{} && ptr == end) {
    constexpr double kTwoTo64 = 18446744073709551616.0;  // exact as a double
    if (real > 0 && real < kTwoTo64) {                   // false for NaN too
      return static_cast<std::uint64_t>(real);
    }
  }
  return 0;
}

bool is_type(od::value& value, od::json_type wanted) {
  od::json_type type{};
  return value.type().get(type) == SUCCESS && type == wanted;
}

// What one record says: Ollama's final-record fields and OpenAI's usage object.
struct Record {
  bool done = false;  // "done": true (a non-boolean "done" is not a final record)
  std::uint64_t prompt_eval_count = 0;
  std::uint64_t eval_count = 0;
  std::uint64_t prompt_eval_duration = 0;
  bool has_usage = false;  // "usage" is an object
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
};

bool read_usage(od::value value, Record& record) {
  od::object usage;
  if (value.get_object().get(usage) != SUCCESS) {
    return false;
  }
  for (auto result : usage) {
    od::field field;
    std::string_view key;
    if (std::move(result).get(field) != SUCCESS || field.unescaped_key().get(key) != SUCCESS) {
      return false;
    }
    if (key == "prompt_tokens") {
      record.prompt_tokens = unsigned_number(field.value());
    } else if (key == "completion_tokens") {
      record.completion_tokens = unsigned_number(field.value());
    }
  }
  record.has_usage = true;
  return true;
}

// Walks the record's top-level fields once, skipping every other value (a non-streamed body's
// "context" array of thousands of token ids, the response text) without building anything: what
// a DOM parse of the whole record cost (38 % of the gateway's instructions on short non-streamed
// generations, bench/RESULTS.md §11). nullopt for a line that is not one JSON object.
std::optional<Record> read_record(std::string_view line) {
  thread_local od::parser parser;
  const simdjson::padded_string padded(line);
  od::document document;
  od::object object;
  if (parser.iterate(padded).get(document) != SUCCESS ||
      document.get_object().get(object) != SUCCESS) {
    return std::nullopt;
  }
  Record record;
  for (auto result : object) {
    od::field field;
    std::string_view key;
    if (std::move(result).get(field) != SUCCESS || field.unescaped_key().get(key) != SUCCESS) {
      return std::nullopt;
    }
    od::value value = field.value();
    if (key == "done") {
      bool done = false;
      record.done =
          is_type(value, od::json_type::boolean) && value.get_bool().get(done) == SUCCESS && done;
    } else if (key == "prompt_eval_count") {
      record.prompt_eval_count = unsigned_number(value);
    } else if (key == "eval_count") {
      record.eval_count = unsigned_number(value);
    } else if (key == "prompt_eval_duration") {
      record.prompt_eval_duration = unsigned_number(value);
    } else if (key == "usage" && is_type(value, od::json_type::object) &&
               !read_usage(value, record)) {
      return std::nullopt;
    }
  }
  return record;
}

}  // namespace

bool UsageScanner::reports_usage(std::string_view path) noexcept {
  static constexpr std::string_view kPaths[] = {
      "/api/generate",        "/api/chat",       "/api/embed",  "/api/embeddings", "/v1/embeddings",
      "/v1/chat/completions", "/v1/completions", "/v1/messages"};
  for (const auto known : kPaths) {
    if (path == known) {
      return true;
    }
  }
  return false;
}

void UsageScanner::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const auto piece = bytes.substr(0, newline);
    if (!skipping_) {
      if (line_.size() + piece.size() > kMaxLineBytes) {
        skipping_ = true;
        line_.clear();
      } else {
        line_.append(piece);
      }
    }
    if (newline == std::string_view::npos) {
      return;
    }
    if (!skipping_) {
      examine(line_);
    }
    line_.clear();
    skipping_ = false;
    bytes.remove_prefix(newline + 1);
  }
}

void UsageScanner::finish() {
  if (!skipping_ && !line_.empty()) {
    examine(line_);
  }
  line_.clear();
  skipping_ = false;
}

void UsageScanner::examine(std::string_view line) {
  // Cheap filters first: almost every streamed line is a token and carries no usage.
  const bool ollama_final = line.find("\"done\"") != std::string_view::npos &&
                            line.find("prompt_eval_count") != std::string_view::npos;
  const bool openai_usage = line.find("\"usage\"") != std::string_view::npos;
  if (!ollama_final && !openai_usage) {
    return;
  }
  if (line.starts_with("data:")) {
    line.remove_prefix(5);
  }
  const auto record = read_record(line);
  if (!record) {
    return;
  }
  if (ollama_final && record->done) {
    usage_.prompt_tokens = record->prompt_eval_count;
    usage_.completion_tokens = record->eval_count;
    usage_.prompt_eval_seconds = static_cast<double>(record->prompt_eval_duration) / 1e9;
    usage_.seen = true;
    return;
  }
  if (record->has_usage) {
    usage_.prompt_tokens = record->prompt_tokens;
    usage_.completion_tokens = record->completion_tokens;
    usage_.seen = true;
  }
}

}  // namespace llmgw::server
