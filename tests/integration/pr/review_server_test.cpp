// `llmgw review-server` in process: signed GitHub deliveries over loopback, the real review
// pipeline against the fake GitHub API and a scripted model.
#include "llmgw/review/review_server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/fake_github.hpp"
#include "fakes/fake_openai.hpp"
#include "fakes/sample_pr.hpp"
#include "llmgw/net/http_client.hpp"
#include "llmgw/review/pipeline.hpp"
#include "llmgw/review/webhook.hpp"
#include "support/wait.hpp"

namespace llmgw::review {
namespace {

using fakes::FakeReply;
using ::testing::HasSubstr;

constexpr std::string_view kSecret = "webhook-s3cret";

class ReviewServerTest : public ::testing::Test {
 protected:
  ReviewServerTest() {
    github_.add_pull("acme/widgets", fakes::sample_fake_pull());
    // Every review: comment on the removed lock, then finish.
    model_.set_responder([](const fakes::RecordedRequest& request) {
      const auto& messages = request.body["messages"];
      const bool commented = std::any_of(messages.begin(), messages.end(), [](const auto& m) {
        return m.value("role", "") == "tool";
      });
      return commented ? FakeReply::tool_call("finish", {{"summary", "put() lost its lock."}})
                       : FakeReply::tool_call("add_comment", {{"path", "src/cache.cpp"},
                                                              {"line", 17},
                                                              {"side", "LEFT"},
                                                              {"body", "Lock removed."}});
    });
    ReviewServerOptions options;
    options.port = 0;
    options.secret = std::string{kSecret};
    server_.emplace(options, [this](const PullRequestEvent& event) { run(event); });
    server_->start();
  }

  void run(const PullRequestEvent& event) {
    github::ClientConfig config;
    config.base_url = github_.base_url();
    config.token = "bot-token";
    github::Client client{config};
    ReviewSettings settings;
    run_review(
        client, event.repo, event.number, settings,
        [this](const std::optional<std::string>&) {
          llm::ProviderConfig provider;
          provider.provider = llm::Provider::openai;
          provider.base_url = model_.openai_base_url();
          provider.model = "test-model";
          return provider;
        },
        true, [](const std::string&) {});
  }

  static std::string pull_request_event(std::string action, std::string head) {
    return nlohmann::json{
        {"action", action},
        {"number", 42},
        {"pull_request", {{"number", 42}, {"state", "open"}, {"head", {{"sha", head}}}}},
        {"repository", {{"full_name", "acme/widgets"}}}}
        .dump();
  }

  net::ClientResponse deliver(const std::string& body, std::string delivery,
                              std::optional<std::string> signature,
                              std::string event = "pull_request") {
    net::ClientRequest request;
    request.method = "POST";
    request.url = server_->base_url() + "/webhook";
    request.body = body;
    request.headers = {{"Content-Type", "application/json"},
                       {"X-GitHub-Event", event},
                       {"X-GitHub-Delivery", delivery}};
    if (signature) {
      request.headers.push_back({"X-Hub-Signature-256", *signature});
    }
    return http_.send(request);
  }

  net::ClientResponse get(const std::string& path) {
    return http_.send({"GET", server_->base_url() + path, {}, {}});
  }

  fakes::FakeGithub github_;
  fakes::FakeOpenAi model_;
  std::optional<ReviewServer> server_;
  net::HttpClient http_;
};

TEST_F(ReviewServerTest, ASignedPullRequestEventIsReviewedOnce) {
  const auto body = pull_request_event("opened", std::string{fakes::kSampleHeadSha});
  const auto signature = webhook_signature(kSecret, body);
  const auto first = deliver(body, "delivery-1", signature);
  EXPECT_EQ(first.status, 202) << first.body;
  ASSERT_TRUE(testing::wait_until([&] { return github_.posted_reviews().size() == 1; }))
      << "the review was not posted";
  // GitHub redelivers the same delivery: nothing runs again.
  const auto again = deliver(body, "delivery-1", signature);
  EXPECT_EQ(again.status, 200);
  EXPECT_THAT(again.body, HasSubstr("duplicate"));
  ASSERT_TRUE(server_->queue().wait_idle(std::chrono::seconds{10}));
  EXPECT_EQ(github_.posted_reviews().size(), 1u);
  EXPECT_EQ(github_.posted_reviews()[0]["comments"][0]["line"], 17);

  const auto health = get("/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_THAT(health.body, HasSubstr("\"status\":\"ok\""));
  const auto metrics = get("/metrics");
  EXPECT_THAT(metrics.body,
              HasSubstr("llmgw_review_server_deliveries_total{result=\"accepted\"} 1"));
  EXPECT_THAT(metrics.body,
              HasSubstr("llmgw_review_server_deliveries_total{result=\"duplicate\"} 1"));
  EXPECT_THAT(metrics.body,
              HasSubstr("llmgw_review_server_reviews_total{outcome=\"completed\"} 1"));
}

TEST_F(ReviewServerTest, UnsignedOrBadlySignedDeliveriesAre401AndRunNothing) {
  const auto body = pull_request_event("opened", std::string{fakes::kSampleHeadSha});
  EXPECT_EQ(deliver(body, "d-unsigned", std::nullopt).status, 401);
  EXPECT_EQ(deliver(body, "d-bad", webhook_signature("wrong secret", body)).status, 401);
  EXPECT_EQ(deliver(body + " ", "d-tampered", webhook_signature(kSecret, body)).status, 401);
  // A forged delivery does not poison its id: the real one with that id is accepted.
  EXPECT_EQ(deliver(body, "d-bad", webhook_signature(kSecret, body)).status, 202);
  ASSERT_TRUE(server_->queue().wait_idle(std::chrono::seconds{10}));
  EXPECT_EQ(model_.request_count() > 0, true);
  EXPECT_EQ(github_.posted_reviews().size(), 1u);
  const auto metrics = get("/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("llmgw_review_server_deliveries_total{result=\"unsigned\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("llmgw_review_server_deliveries_total{result=\"bad_signature\"} 2"));
}

TEST_F(ReviewServerTest, PingsAndOtherEventsAreAnsweredWithoutAReview) {
  const std::string ping = R"({"zen": "Keep it logically awesome."})";
  EXPECT_EQ(deliver(ping, "d-ping", webhook_signature(kSecret, ping), "ping").status, 200);
  const auto closed = pull_request_event("closed", "abc");
  const auto answer = deliver(closed, "d-closed", webhook_signature(kSecret, closed));
  EXPECT_EQ(answer.status, 200);
  EXPECT_THAT(answer.body, HasSubstr("ignored"));
  EXPECT_EQ(get("/webhook").status, 405);
  EXPECT_EQ(get("/nope").status, 404);
  EXPECT_EQ(model_.request_count(), 0u);
}

}  // namespace
}  // namespace llmgw::review
