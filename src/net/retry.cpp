#include "llmgw/net/retry.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/beast/http/status.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "llmgw/util/text.hpp"

namespace llmgw::net {
namespace {

using std::chrono::milliseconds;
using util::trim;

std::optional<double> parse_number(std::string_view text) {
  text = trim(text);
  double value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  return value;
}

milliseconds from_seconds(double seconds) {
  // Rounded up: waiting a little long is harmless, a little short earns another 429.
  return milliseconds{static_cast<std::int64_t>(std::ceil(seconds * 1000.0))};
}

double default_random() {
  thread_local std::mt19937 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>{0.0, 1.0}(engine);
}

bool header_is_zero(const ClientResponse& response, std::string_view name) {
  const auto value = response.header(name);
  return value && trim(*value) == "0";
}

// GitHub's docs: wait at least one minute, then exponentially longer.
constexpr milliseconds kSecondaryLimitWait{60'000};

}  // namespace

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) {
    return std::nullopt;
  }
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const auto seconds = parse_number(value);
    return seconds ? std::optional{from_seconds(*seconds)} : std::nullopt;
  }
  // IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT" (RFC 9110 §5.6.7).
  std::tm tm{};
  std::istringstream in{std::string{value}};
  in.imbue(std::locale::classic());
  in >> std::get_time(&tm, "%a, %d %b %Y %H:%M:%S");
  std::string zone;
  in >> zone;
  if (in.fail() || zone != "GMT") {
    return std::nullopt;
  }
  const auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (when <= now) {
    return milliseconds{0};
  }
  return std::chrono::ceil<milliseconds>(when - now);
}

std::optional<milliseconds> parse_reset_duration(std::string_view value) {
  value = trim(value);
  if (value.empty()) {
    return std::nullopt;
  }
  // A sequence of <number><unit> with units h, m, s, ms ("1h2m3.5s", "120ms").
  double total_ms = 0;
  while (!value.empty()) {
    std::size_t digits = 0;
    while (digits < value.size() &&
           ((value[digits] >= '0' && value[digits] <= '9') || value[digits] == '.')) {
      ++digits;
    }
    if (digits == 0) {
      return std::nullopt;
    }
    const auto number = parse_number(value.substr(0, digits));
    if (!number) {
      return std::nullopt;
    }
    value.remove_prefix(digits);
    double unit_ms = 0;
    if (value.substr(0, 2) == "ms") {
      unit_ms = 1;
      value.remove_prefix(2);
    } else if (!value.empty() && value.front() == 's') {
      unit_ms = 1000;
      value.remove_prefix(1);
    } else if (!value.empty() && value.front() == 'm') {
      unit_ms = 60'000;
      value.remove_prefix(1);
    } else if (!value.empty() && value.front() == 'h') {
      unit_ms = 3'600'000;
      value.remove_prefix(1);
    } else {
      return std::nullopt;
    }
    total_ms += *number * unit_ms;
  }
  return milliseconds{static_cast<std::int64_t>(std::ceil(total_ms))};
}

bool is_retryable_status(const ClientResponse& response) {
  if (response.status == 429 || (response.status >= 500 && response.status <= 599)) {
    return true;
  }
  // GitHub's primary rate limit answers 403 with no requests left; its secondary limits answer
  // 403 with Retry-After, or with only a message.
  return response.status == 403 &&
         (header_is_zero(response, "x-ratelimit-remaining") ||
          response.header("retry-after").has_value() || is_secondary_rate_limit(response));
}

bool is_secondary_rate_limit(const ClientResponse& response) {
  if (response.status != 403 && response.status != 429) {
    return false;
  }
  auto message = api_error_message(response.body);
  std::transform(message.begin(), message.end(), message.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return message.find("secondary rate limit") != std::string::npos;
}

std::optional<milliseconds> server_retry_hint(const ClientResponse& response,
                                              std::chrono::system_clock::time_point now) {
  if (const auto retry_after = response.header("retry-after")) {
    if (auto hint = parse_retry_after(*retry_after, now)) {
      return hint;
    }
  }
  if (header_is_zero(response, "x-ratelimit-remaining")) {
    if (const auto reset = response.header("x-ratelimit-reset")) {
      if (const auto epoch_seconds = parse_number(*reset)) {
        const auto when = std::chrono::system_clock::time_point{
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::duration<double>{*epoch_seconds})};
        return when <= now ? milliseconds{0} : std::chrono::ceil<milliseconds>(when - now);
      }
    }
  }
  // Groq/OpenAI: one reset per limit. The exhausted limit's reset is what matters; when none
  // says it is exhausted, the longer reset is the safe choice.
  std::optional<milliseconds> exhausted;
  std::optional<milliseconds> any;
  for (const auto kind : {"requests", "tokens"}) {
    const auto reset = response.header(std::string{"x-ratelimit-reset-"} + kind);
    const auto parsed = reset ? parse_reset_duration(*reset) : std::nullopt;
    if (!parsed) {
      continue;
    }
    any = std::max(any.value_or(milliseconds{0}), *parsed);
    if (header_is_zero(response, std::string{"x-ratelimit-remaining-"} + kind)) {
      exhausted = std::max(exhausted.value_or(milliseconds{0}), *parsed);
    }
  }
  return exhausted ? exhausted : any;
}

milliseconds backoff_delay(const RetryPolicy& policy, int failed_attempts, double random01) {
  const double exponent = std::max(0, failed_attempts - 1);
  double delay = static_cast<double>(policy.initial_backoff.count()) *
                 std::pow(std::max(1.0, policy.multiplier), exponent);
  delay = std::min(delay, static_cast<double>(policy.max_backoff.count()));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  delay *= 1.0 + jitter * (2.0 * std::clamp(random01, 0.0, 1.0) - 1.0);
  return milliseconds{static_cast<std::int64_t>(std::max(0.0, std::round(delay)))};
}

ClientResponse send_with_retry(const std::function<ClientResponse()>& send,
                               const RetryOptions& options) {
  const auto& policy = options.policy;
  const int max_attempts = std::max(1, policy.max_attempts);
  const auto now = [&] { return options.now ? options.now() : std::chrono::system_clock::now(); };
  const auto random = [&] { return options.random ? options.random() : default_random(); };
  const auto label = options.operation.empty() ? std::string{"request"} : options.operation;

  for (int attempt = 1;; ++attempt) {
    milliseconds delay{0};
    std::string reason;
    try {
      auto response = send();
      const bool server_error = response.status >= 500;
      if (!is_retryable_status(response) || attempt >= max_attempts ||
          (server_error && !options.idempotent)) {
        return response;
      }
      reason = "HTTP " + std::to_string(response.status);
      if (const auto hint = server_retry_hint(response, now());
          !hint && is_secondary_rate_limit(response)) {
        // No hint: a minute, doubling on each further refusal (jitter only lengthens it).
        const auto doubled =
            kSecondaryLimitWait.count() * std::pow(std::max(1.0, policy.multiplier), attempt - 1);
        delay = milliseconds{static_cast<std::int64_t>(
            doubled * (1.0 + std::clamp(policy.jitter, 0.0, 1.0) * random()))};
        if (delay > std::max(policy.max_wait, kSecondaryLimitWait)) {
          spdlog::warn(
              "{}: {} (secondary rate limit) and the next wait of {} s is more than the {} "
              "s allowed",
              label, reason, delay.count() / 1000, policy.max_wait.count() / 1000);
          return response;
        }
      } else if (hint) {
        if (*hint > policy.max_wait) {
          spdlog::warn("{}: {} and the server asks to wait {} s (more than the {} s allowed)",
                       label, reason, hint->count() / 1000, policy.max_wait.count() / 1000);
          return response;
        }
        delay = *hint;
      } else {
        delay = backoff_delay(policy, attempt, random());
      }
    } catch (const HostUnreachableError&) {
      throw;  // the same in a second: fail fast
    } catch (const TransportError& error) {
      if (attempt >= max_attempts || !options.idempotent) {
        throw;
      }
      reason = error.what();
      delay = backoff_delay(policy, attempt, random());
    }
    spdlog::warn("{}: attempt {}/{} failed ({}); retrying in {} ms", label, attempt, max_attempts,
                 reason, delay.count());
    if (options.on_retry) {
      options.on_retry(attempt, delay, reason);
    }
    if (options.sleep) {
      options.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
}

std::string api_error_message(std::string_view body) {
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_object()) {
    if (const auto it = json.find("message"); it != json.end() && it->is_string()) {
      return it->get<std::string>();
    }
    if (const auto it = json.find("error"); it != json.end()) {
      if (it->is_string()) {
        return it->get<std::string>();
      }
      if (it->is_object()) {
        if (const auto msg = it->find("message"); msg != it->end() && msg->is_string()) {
          return msg->get<std::string>();
        }
      }
    }
  }
  auto first_line = trim(body.substr(0, body.find('\n')));
  if (first_line.size() > 200) {
    first_line = first_line.substr(0, 200);
  }
  return std::string{first_line};
}

std::string url_host(std::string_view url) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    return {};
  }
  std::string host{parsed->encoded_host()};
  if (parsed->has_port()) {
    host += ":" + std::string{parsed->port()};
  }
  return host;
}

std::string describe_http_failure(std::string_view url, const ClientResponse& response) {
  namespace http = boost::beast::http;
  std::string out = url_host(url);
  if (out.empty()) {
    out = "server";
  }
  out += " answered " + std::to_string(response.status);
  const auto reason = http::obsolete_reason(
      http::int_to_status(static_cast<unsigned>(std::clamp(response.status, 0, 999))));
  if (!reason.empty() && reason != "<unknown-status>") {
    out += " " + std::string{reason};
  }
  if (auto message = api_error_message(response.body); !message.empty()) {
    out += ": " + message;
  }
  return out;
}

}  // namespace llmgw::net
