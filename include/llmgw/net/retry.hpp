#pragma once

// Retrying HTTP calls to rate-limited APIs (GitHub, Groq, OpenAI) with exponential backoff and
// jitter, honouring the server's own hints about when to come back.
//
// Retried: a TransportError (timeout, broken connection; not a host that does not resolve or
// refuses connections: that fails at once), 429, 5xx, and GitHub's 403 with
// "x-ratelimit-remaining: 0" (its primary rate limit), with Retry-After or a "secondary rate limit"
// message (its secondary limits). Everything else is returned to the caller at once.
//
// How long to wait before attempt k+1 (k = 1, 2, ...):
//   1. the server's hint, when there is one: Retry-After (seconds or an HTTP-date),
//      x-ratelimit-reset (epoch seconds, GitHub), x-ratelimit-reset-requests / -tokens
//      (durations such as "2m59.56s", "7.66s", "120ms", Groq and OpenAI; the longer one wins);
//   2. otherwise initial_backoff * multiplier^(k-1), capped at max_backoff, with +-jitter.
// A hint longer than max_wait is not waited for: the call gives up with the last response, so a
// CLI never sleeps for an hour because of a daily quota. Attempts are bounded by max_attempts.
//
// Sleeping, the clock and the randomness are injectable so tests run without waiting.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "llmgw/net/http_client.hpp"

namespace llmgw::net {

// The host name did not resolve, or the host refused the connection (thrown by HttpClient).
// Retrying a second later will not help (nothing listens there, or the name is wrong), so
// send_with_retry does not retry it: callers fail fast. A timeout or a dropped connection stays a
// plain TransportError: it may pass.
class HostUnreachableError : public TransportError {
 public:
  using TransportError::TransportError;
};

struct RetryPolicy {
  int max_attempts = 5;  // including the first one
  std::chrono::milliseconds initial_backoff{500};
  double multiplier = 2.0;
  std::chrono::milliseconds max_backoff{20'000};
  std::chrono::milliseconds max_wait{90'000};  // the longest single wait honoured
  double jitter = 0.2;                         // fraction of the delay, +-; 0 disables
};

using SleepFunction = std::function<void(std::chrono::milliseconds)>;
using NowFunction = std::function<std::chrono::system_clock::time_point()>;

struct RetryOptions {
  RetryPolicy policy;
  SleepFunction sleep;  // default: std::this_thread::sleep_for
  NowFunction now;      // default: std::chrono::system_clock::now
  // Returns a uniform value in [0, 1); default: a per-call std::mt19937 seeded from random_device.
  std::function<double()> random;
  // False for requests that must not run twice (creating a review): then only answers that say
  // the request was not processed (429, rate-limited 403) are retried, not 5xx or broken
  // connections, which may come after the server acted.
  bool idempotent = true;
  // Names the call in log lines, e.g. "GET api.github.com" (never a URL query or a header).
  std::string operation;
  // Called before each wait (attempt just failed, delay, reason) e.g. for a progress line.
  std::function<void(int attempt, std::chrono::milliseconds delay, const std::string& reason)>
      on_retry;
};

// Parses a Retry-After value: delta seconds ("120") or an IMF-fixdate
// ("Wed, 21 Oct 2015 07:28:00 GMT"). A date in the past gives zero.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// Parses Groq/OpenAI reset durations: "2m59.56s", "7.66s", "120ms", "1h2m3s", "0s".
std::optional<std::chrono::milliseconds> parse_reset_duration(std::string_view value);

// True for responses worth another attempt (see the top of this file).
bool is_retryable_status(const ClientResponse& response);

// GitHub's secondary rate limit: 403 (or 429) whose message says "secondary rate limit". Without
// a Retry-After it is waited out for at least 60 s, doubling per further refusal (GitHub's docs);
// a wait longer than max_wait (but never less than the first minute) gives up.
bool is_secondary_rate_limit(const ClientResponse& response);

// The server's hint of how long to wait, from the headers listed above; nullopt when none.
std::optional<std::chrono::milliseconds> server_retry_hint(
    const ClientResponse& response, std::chrono::system_clock::time_point now);

// The backoff delay before attempt `failed_attempts + 1` without a server hint; `random01` in
// [0, 1) places the jitter.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int failed_attempts,
                                        double random01);

// Calls `send` until it returns a response that is not retryable, the attempts are used up, or the
// server's hint exceeds max_wait; returns the last response. The last TransportError is rethrown
// when every attempt failed at the transport level.
ClientResponse send_with_retry(const std::function<ClientResponse()>& send,
                               const RetryOptions& options = {});

// The "message" field of a JSON error body ({"message": ...} as GitHub answers, or OpenAI's
// {"error": {"message": ...}}), else the body's first line cut to 200 bytes; empty for no body.
std::string api_error_message(std::string_view body);

// "api.github.com answered 404 Not Found: <message>" for error reports. Names the host of `url`
// (never its query, which could hold a key) and never includes header values.
std::string describe_http_failure(std::string_view url, const ClientResponse& response);

// The host (and port if not the default) of an absolute URL, "" if it does not parse.
std::string url_host(std::string_view url);

}  // namespace llmgw::net
