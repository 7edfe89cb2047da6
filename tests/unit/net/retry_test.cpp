#include "llmgw/net/retry.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace llmgw::net {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// 2015-10-21T07:28:00Z
const auto kNow = std::chrono::system_clock::from_time_t(1445412480);

ClientResponse response(int status, HttpHeaders headers = {}, std::string body = {}) {
  return ClientResponse{status, std::move(headers), std::move(body)};
}

TEST(RetryAfter, ParsesDeltaSecondsAndHttpDates) {
  EXPECT_EQ(parse_retry_after("120", kNow), milliseconds{120'000});
  EXPECT_EQ(parse_retry_after(" 0 ", kNow), milliseconds{0});
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", kNow), milliseconds{30'000});
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", kNow), milliseconds{0});
  EXPECT_EQ(parse_retry_after("soon", kNow), std::nullopt);
  EXPECT_EQ(parse_retry_after("", kNow), std::nullopt);
}

TEST(ResetDuration, ParsesGroqAndOpenAiFormats) {
  EXPECT_EQ(parse_reset_duration("2m59.56s"), milliseconds{179'560});
  EXPECT_EQ(parse_reset_duration("7.66s"), milliseconds{7'660});
  EXPECT_EQ(parse_reset_duration("120ms"), milliseconds{120});
  EXPECT_EQ(parse_reset_duration("1h2m3s"), milliseconds{3'723'000});
  EXPECT_EQ(parse_reset_duration("0s"), milliseconds{0});
  EXPECT_EQ(parse_reset_duration("12"), std::nullopt);
  EXPECT_EQ(parse_reset_duration("s"), std::nullopt);
  EXPECT_EQ(parse_reset_duration("3x"), std::nullopt);
}

TEST(RetryableStatus, RateLimitsAndServerErrorsOnly) {
  EXPECT_TRUE(is_retryable_status(response(429)));
  EXPECT_TRUE(is_retryable_status(response(502)));
  EXPECT_TRUE(is_retryable_status(response(503)));
  EXPECT_TRUE(is_retryable_status(response(403, {{"X-RateLimit-Remaining", "0"}})));
  EXPECT_TRUE(is_retryable_status(response(403, {{"retry-after", "60"}})));  // secondary limit
  EXPECT_FALSE(is_retryable_status(response(403, {{"x-ratelimit-remaining", "12"}})));
  EXPECT_FALSE(is_retryable_status(response(403)));
  EXPECT_FALSE(is_retryable_status(response(404)));
  EXPECT_FALSE(is_retryable_status(response(422)));
  EXPECT_FALSE(is_retryable_status(response(200)));
}

TEST(ServerRetryHint, GithubResetEpochWhenNothingRemains) {
  const auto reset = std::to_string(1445412480 + 42);
  EXPECT_EQ(
      server_retry_hint(
          response(403, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", reset}}), kNow),
      milliseconds{42'000});
  // Requests left: the reset time is not a reason to wait.
  EXPECT_EQ(
      server_retry_hint(
          response(429, {{"x-ratelimit-remaining", "5"}, {"x-ratelimit-reset", reset}}), kNow),
      std::nullopt);
  // Retry-After wins over the reset time.
  EXPECT_EQ(server_retry_hint(response(429, {{"retry-after", "3"},
                                             {"x-ratelimit-remaining", "0"},
                                             {"x-ratelimit-reset", reset}}),
                              kNow),
            milliseconds{3'000});
}

TEST(ServerRetryHint, GroqResetOfTheExhaustedLimit) {
  EXPECT_EQ(server_retry_hint(response(429, {{"x-ratelimit-remaining-requests", "100"},
                                             {"x-ratelimit-reset-requests", "2m59.56s"},
                                             {"x-ratelimit-remaining-tokens", "0"},
                                             {"x-ratelimit-reset-tokens", "7.66s"}}),
                              kNow),
            milliseconds{7'660});
  EXPECT_EQ(server_retry_hint(response(429, {{"x-ratelimit-reset-requests", "120ms"},
                                             {"x-ratelimit-reset-tokens", "1s"}}),
                              kNow),
            milliseconds{1'000});
}

TEST(Backoff, GrowsExponentiallyWithinJitterAndCap) {
  RetryPolicy policy;
  policy.initial_backoff = milliseconds{100};
  policy.multiplier = 2.0;
  policy.max_backoff = milliseconds{1'000};
  policy.jitter = 0.2;
  EXPECT_EQ(backoff_delay(policy, 1, 0.5), milliseconds{100});
  EXPECT_EQ(backoff_delay(policy, 2, 0.5), milliseconds{200});
  EXPECT_EQ(backoff_delay(policy, 3, 0.5), milliseconds{400});
  EXPECT_EQ(backoff_delay(policy, 10, 0.5), milliseconds{1'000});
  EXPECT_EQ(backoff_delay(policy, 2, 0.0), milliseconds{160});
  EXPECT_EQ(backoff_delay(policy, 2, 1.0), milliseconds{240});
}

struct Recorder {
  std::vector<milliseconds> sleeps;
  RetryOptions options(int max_attempts = 4) {
    RetryOptions opts;
    opts.policy.max_attempts = max_attempts;
    opts.policy.initial_backoff = milliseconds{100};
    opts.policy.max_wait = seconds{60};
    opts.policy.jitter = 0;
    opts.sleep = [this](milliseconds d) { sleeps.push_back(d); };
    opts.now = [] { return kNow; };
    return opts;
  }
};

TEST(SendWithRetry, RetriesServerErrorsWithBackoffThenSucceeds) {
  Recorder recorder;
  int calls = 0;
  const auto result = send_with_retry(
      [&] { return ++calls < 3 ? response(503) : response(200, {}, "ok"); }, recorder.options());
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "ok");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(recorder.sleeps, (std::vector<milliseconds>{milliseconds{100}, milliseconds{200}}));
}

TEST(SendWithRetry, WaitsUntilGithubResetTime) {
  Recorder recorder;
  int calls = 0;
  const auto reset = std::to_string(1445412480 + 5);
  const auto result = send_with_retry(
      [&] {
        return ++calls == 1
                   ? response(403, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", reset}})
                   : response(200);
      },
      recorder.options());
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(recorder.sleeps, (std::vector<milliseconds>{milliseconds{5'000}}));
}

TEST(SendWithRetry, GivesUpAtOnceWhenTheServerAsksForTooLongAWait) {
  Recorder recorder;
  int calls = 0;
  const auto result = send_with_retry(
      [&] {
        return ++calls, response(429, {{"retry-after", "3600"}});
      },
      recorder.options());
  EXPECT_EQ(result.status, 429);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(recorder.sleeps.empty());
}

TEST(SendWithRetry, BoundedAttemptsReturnTheLastResponse) {
  Recorder recorder;
  int calls = 0;
  const auto result = send_with_retry([&] { return ++calls, response(500); }, recorder.options(3));
  EXPECT_EQ(result.status, 500);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(recorder.sleeps.size(), 2u);
}

TEST(SendWithRetry, DoesNotRetryClientErrors) {
  Recorder recorder;
  int calls = 0;
  EXPECT_EQ(send_with_retry([&] { return ++calls, response(404); }, recorder.options()).status,
            404);
  EXPECT_EQ(calls, 1);
}

TEST(SendWithRetry, RetriesTransportErrorsAndRethrowsTheLast) {
  Recorder recorder;
  int calls = 0;
  const auto ok = send_with_retry(
      [&] {
        if (++calls == 1) {
          throw TransportError{"127.0.0.1:1: connection refused"};
        }
        return response(200);
      },
      recorder.options());
  EXPECT_EQ(ok.status, 200);

  calls = 0;
  EXPECT_THROW(send_with_retry(
                   [&]() -> ClientResponse {
                     ++calls;
                     throw TransportError{"timeout"};
                   },
                   recorder.options(2)),
               TransportError);
  EXPECT_EQ(calls, 2);
}

// A host that does not resolve or refuses connections will do the same in a second: fail fast.
TEST(SendWithRetry, AnUnreachableHostIsNotRetried) {
  Recorder recorder;
  int calls = 0;
  EXPECT_THROW(
      send_with_retry(
          [&]() -> ClientResponse {
            ++calls;
            throw HostUnreachableError{"connect to 127.0.0.1:1 failed: Connection refused"};
          },
          recorder.options()),
      TransportError);
  EXPECT_EQ(calls, 1);
}

TEST(RetryableStatus, GithubSecondaryRateLimitWithoutHeaders) {
  EXPECT_TRUE(is_retryable_status(response(
      403, {}, R"({"message": "You have exceeded a secondary rate limit. Please wait."})")));
  EXPECT_FALSE(is_retryable_status(response(403, {}, R"({"message": "Resource not accessible"})")));
}

TEST(SendWithRetry, NonIdempotentRequestsRetryOnlyWhenNotProcessed) {
  Recorder recorder;
  auto options = recorder.options();
  options.idempotent = false;
  int calls = 0;
  EXPECT_EQ(send_with_retry([&] { return ++calls, response(502); }, options).status, 502);
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_THROW(send_with_retry(
                   [&]() -> ClientResponse {
                     ++calls;
                     throw TransportError{"connection reset"};
                   },
                   options),
               TransportError);
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_EQ(send_with_retry(
                [&] {
                  return ++calls == 1 ? response(429, {{"retry-after", "1"}}) : response(200);
                },
                options)
                .status,
            200);
  EXPECT_EQ(calls, 2);
}

TEST(HttpFailure, NamesHostStatusAndApiMessageButNotTheQuery) {
  const auto github = response(404, {}, R"({"message":"Not Found","documentation_url":"x"})");
  EXPECT_EQ(describe_http_failure("https://api.github.com/repos/o/r?access_token=s3cret", github),
            "api.github.com answered 404 Not Found: Not Found");
  const auto openai = response(401, {}, R"({"error":{"message":"Invalid API Key"}})");
  EXPECT_EQ(describe_http_failure("http://127.0.0.1:8080/v1/chat/completions", openai),
            "127.0.0.1:8080 answered 401 Unauthorized: Invalid API Key");
  EXPECT_EQ(api_error_message("plain text\nsecond line"), "plain text");
  EXPECT_EQ(api_error_message(""), "");
}

}  // namespace
}  // namespace llmgw::net
