#include "llm/provider_http.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "llmgw/net/url.hpp"

namespace llmgw::llm::detail {
namespace {

constexpr std::size_t kErrorBodyPrefixBytes = 64 * 1024;

// Thrown inside the retry loop when a stream breaks after output reached the user; not a
// TransportError, so send_with_retry lets it through instead of retrying.
class StreamInterrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string lowercase(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool mentions_context_overflow(std::string_view message) {
  const auto lower = lowercase(message);
  for (const char* needle :
       {"context length", "context_length", "maximum context", "context window", "too many tokens",
        "prompt is too long", "request too large", "reduce the length"}) {
    if (lower.find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Ollama: "<model> does not support tools"; vLLM: "\"auto\" tool choice requires
// --enable-auto-tool-choice"; others: "tool use is not supported", "does not support function
// calling".
bool refuses_tools(std::string_view message) {
  const auto lower = lowercase(message);
  for (const char* needle : {"does not support tools", "tool choice requires",
                             "tools are not supported", "tool use is not supported",
                             "does not support function calling", "does not support tool"}) {
    if (lower.find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

void LineSplitter::feed(std::string_view bytes,
                        const std::function<void(std::string_view)>& on_line) {
  pending_.append(bytes);
  std::size_t start = 0;
  for (auto eol = pending_.find('\n', start); eol != std::string::npos;
       eol = pending_.find('\n', start)) {
    std::string_view line{pending_.data() + start, eol - start};
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    on_line(line);
    start = eol + 1;
  }
  pending_.erase(0, start);
}

void LineSplitter::finish(const std::function<void(std::string_view)>& on_line) {
  if (!pending_.empty()) {
    std::string last = std::move(pending_);
    pending_.clear();
    if (last.back() == '\r') {
      last.pop_back();
    }
    on_line(last);
  }
}

nlohmann::json tools_json(const std::vector<ToolSpec>& tools) {
  auto out = nlohmann::json::array();
  for (const auto& tool : tools) {
    out.push_back({{"type", "function"},
                   {"function",
                    {{"name", tool.name},
                     {"description", tool.description},
                     {"parameters", tool.parameters}}}});
  }
  return out;
}

std::string string_field(const nlohmann::json& object, std::string_view key, std::string fallback) {
  if (!object.is_object()) {
    return fallback;
  }
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::int64_t int_field(const nlohmann::json& object, std::string_view key, std::int64_t fallback) {
  if (!object.is_object()) {
    return fallback;
  }
  const auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : fallback;
}

nlohmann::json object_field(const nlohmann::json& object, std::string_view key) {
  if (object.is_object()) {
    if (const auto it = object.find(key); it != object.end() && it->is_object()) {
      return *it;
    }
  }
  return nlohmann::json::object();
}

nlohmann::json decode_arguments(const nlohmann::json& arguments) {
  if (arguments.is_string()) {
    const auto& text = arguments.get_ref<const std::string&>();
    if (text.empty()) {
      return nlohmann::json::object();
    }
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    return parsed.is_discarded() ? arguments : parsed;
  }
  return arguments.is_null() ? nlohmann::json::object() : arguments;
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ProviderHttp::ProviderHttp(const ProviderConfig& config, std::string provider_name)
    : config_(config),
      provider_name_(std::move(provider_name)),
      host_(net::url_host(config.base_url)),
      http_(net::ClientOptions{.connect_timeout = config.connect_timeout,
                               .read_timeout = config.read_timeout,
                               .ca_file = config.ca_file}) {}

std::string ProviderHttp::describe() const {
  return provider_name_ + " at " + redact(net::redact_url(config_.base_url), config_.api_key) +
         " (model " + config_.model + ")";
}

net::ClientResponse ProviderHttp::post_json(std::string_view path, const nlohmann::json& body,
                                            const std::optional<std::string>& session_id,
                                            const LineHandler* lines) {
  net::ClientRequest request;
  request.method = "POST";
  request.url = config_.base_url + std::string{path};
  request.body = dump_json(body);
  request.headers.push_back({"Content-Type", "application/json"});
  if (!config_.api_key.empty()) {
    request.headers.push_back({"Authorization", "Bearer " + config_.api_key});
  }
  if (const auto& session = session_id ? session_id : config_.session_id; session) {
    request.headers.push_back({"X-Session-ID", *session});
  }

  net::RetryOptions retry;
  retry.policy.max_attempts = std::max(1, config_.max_attempts);
  retry.operation = "POST " + host_ + std::string{path};
  const auto attempt = [&]() -> net::ClientResponse {
    if (lines == nullptr) {
      return http_.send(request);
    }
    lines->reset();
    LineSplitter splitter;
    std::string prefix;
    try {
      auto response = http_.send(request, [&](std::string_view bytes) {
        if (prefix.size() < kErrorBodyPrefixBytes) {
          prefix.append(bytes.substr(0, kErrorBodyPrefixBytes - prefix.size()));
        }
        splitter.feed(bytes, lines->on_line);
        return true;
      });
      splitter.finish(lines->on_line);
      response.body = std::move(prefix);
      return response;
    } catch (const net::TransportError& error) {
      if (lines->emitted()) {
        throw StreamInterrupted(error.what());
      }
      throw;
    }
  };

  const auto started = std::chrono::steady_clock::now();
  try {
    auto response = net::send_with_retry(attempt, retry);
    spdlog::debug("{} POST {}{} -> {} in {} ms", provider_name_, host_, path, response.status,
                  std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count());
    return response;
  } catch (const StreamInterrupted& error) {
    throw net::TransportError(provider_name_ + " " + host_ + ": the stream broke after output: " +
                              redact(error.what(), config_.api_key));
  } catch (const net::HostUnreachableError& error) {
    throw net::HostUnreachableError(redact(error.what(), config_.api_key));
  } catch (const net::TransportError& error) {
    // The net layer names the host and never a header; redact all the same, belt and braces.
    throw net::TransportError(redact(error.what(), config_.api_key));
  }
}

void ProviderHttp::throw_api_error(int status, std::string_view body) const {
  std::string message = net::api_error_message(body);
  std::string code;
  std::string failed_generation;
  const auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    const auto error = parsed.find("error");
    if (error != parsed.end() && error->is_object()) {
      code = string_field(*error, "code");
      if (code.empty()) {
        code = string_field(*error, "type");
      }
      failed_generation = string_field(*error, "failed_generation");
    } else if (error != parsed.end() && error->is_string()) {
      message = error->get<std::string>();  // Ollama: {"error": "..."}
    }
  }
  message = redact(std::move(message), config_.api_key);
  failed_generation = redact(std::move(failed_generation), config_.api_key);
  const std::string what = provider_name_ + " " + host_ + ": HTTP " + std::to_string(status) +
                           ": " + (message.empty() ? std::string{"(no message)"} : message);
  if (status == 413 || code == "context_length_exceeded" || mentions_context_overflow(message)) {
    throw ContextTooLongError(status, message, what);
  }
  if (status == 400 && code == "tool_use_failed") {
    throw ToolUseFailedError(status, message, what, std::move(failed_generation));
  }
  if (status >= 400 && status < 500 && refuses_tools(message)) {
    throw ToolsUnsupportedError(status, message, what);
  }
  throw ApiError(status, message, what);
}

}  // namespace llmgw::llm::detail
