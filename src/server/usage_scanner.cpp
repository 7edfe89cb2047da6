#include "llmgw/server/usage_scanner.hpp"

#include <nlohmann/json.hpp>

namespace llmgw::server {
namespace {

// A count or a duration: a whole number exactly, a fraction truncated when it fits; a negative
// number, one beyond uint64 (a cast would be undefined) or anything else counts as 0.
std::uint64_t unsigned_field(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end()) {
    return 0;
  }
  if (it->is_number_unsigned()) {
    return it->get<std::uint64_t>();
  }
  if (it->is_number_float()) {
    constexpr double kTwoTo64 = 18446744073709551616.0;  // exact as a double
    const auto value = it->get<double>();
    if (value > 0 && value < kTwoTo64) {  // false for NaN too
      return static_cast<std::uint64_t>(value);
    }
  }
  return 0;
}

}  // namespace

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
  const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return;
  }
  // Not value("done", false): it throws when a node sends a non-boolean "done" (found by the
  // usage fuzzer), and the data path must not throw.
  const auto done = parsed.find("done");
  if (ollama_final && done != parsed.end() && done->is_boolean() && done->get<bool>()) {
    usage_.prompt_tokens = unsigned_field(parsed, "prompt_eval_count");
    usage_.completion_tokens = unsigned_field(parsed, "eval_count");
    usage_.prompt_eval_seconds =
        static_cast<double>(unsigned_field(parsed, "prompt_eval_duration")) / 1e9;
    usage_.seen = true;
    return;
  }
  const auto usage = parsed.find("usage");
  if (usage != parsed.end() && usage->is_object()) {
    usage_.prompt_tokens = unsigned_field(*usage, "prompt_tokens");
    usage_.completion_tokens = unsigned_field(*usage, "completion_tokens");
    usage_.seen = true;
  }
}

}  // namespace llmgw::server
