// The Redis placement store (routing/placement_store.hpp) against a real redis-server: replicas
// that place the same session agree, new sessions fill the nodes up to their fair share, failover
// placements return, placements lost by Redis come back from a replica's cache, and a Redis that
// is down or hangs makes the store unavailable at once instead of holding requests.

#include "llmgw/routing/placement_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using routing::Placement;
using routing::PlacementRequest;
using routing::PlacementStore;
using std::chrono::milliseconds;

#define SKIP_WITHOUT_REDIS()                                                            \
  if (!RedisServer::installed()) {                                                      \
    GTEST_SKIP() << "redis-server is not installed (scripts/install-deps installs it)"; \
  }

std::unique_ptr<PlacementStore> make_store(const RedisServer& redis,
                                           milliseconds timeout = milliseconds{200}) {
  routing::PlacementStoreOptions options;
  options.endpoint.host = "127.0.0.1";
  options.endpoint.port = redis.port();
  options.timeout = timeout;
  return std::make_unique<PlacementStore>(std::move(options));
}

// Three nodes a, b, c of weight 1, all healthy, tried in the order given (the first is the owner).
PlacementRequest request_for(std::uint64_t position, std::vector<std::string> order,
                             const std::vector<std::string>& down = {}) {
  PlacementRequest request;
  request.key_position = position;
  request.owner = order.front();
  request.idle = milliseconds{60'000};
  double healthy = 0;
  for (const auto& id : order) {
    const bool up = std::find(down.begin(), down.end(), id) == down.end();
    request.nodes.push_back({id, 1.0, up, up});
    healthy += up ? 1.0 : 0.0;
    if (up && request.fallback.empty()) {
      request.fallback = id;
    }
  }
  request.owner_healthy = std::find(down.begin(), down.end(), order.front()) == down.end();
  request.healthy_weight = healthy;
  return request;
}

std::future<std::optional<Placement>> place_async(PlacementStore& store,
                                                  const PlacementRequest& request) {
  auto promise = std::make_shared<std::promise<std::optional<Placement>>>();
  auto future = promise->get_future();
  store.place(request, [promise](std::optional<Placement> placement, bool /*placed_now*/) {
    promise->set_value(std::move(placement));
  });
  return future;
}

std::optional<Placement> place(PlacementStore& store, const PlacementRequest& request) {
  auto future = place_async(store, request);
  if (future.wait_for(std::chrono::seconds{5}) != std::future_status::ready) {
    ADD_FAILURE() << "the store did not answer within 5 s";
    return std::nullopt;
  }
  return future.get();
}

void wait_available(const PlacementStore& store) {
  ASSERT_TRUE(wait_until([&] { return store.available(); }, milliseconds{10'000}))
      << "the store never became available";
}

// A redis-server and one store connected to it.
class PlacementStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_REDIS();
    redis_ = std::make_unique<RedisServer>();
    store = make_store(*redis_);
    wait_available(*store);
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<PlacementStore> store;
};

TEST(PlacementStore, PlacementsRoundTripThroughTheirStoredForm) {
  EXPECT_EQ(routing::encode_placement({"node-a", false}), "hnode-a");
  EXPECT_EQ(routing::encode_placement({"b", true}), "fb");
  EXPECT_EQ(routing::decode_placement("hnode-a"), (Placement{"node-a", false}));
  EXPECT_EQ(routing::decode_placement("fb"), (Placement{"b", true}));
  EXPECT_FALSE(routing::decode_placement("h"));
  EXPECT_FALSE(routing::decode_placement("xnode"));
}

TEST_F(PlacementStoreTest, TwoReplicasPlacingTheSameSessionsAtOnceAgree) {
  auto& first = store;
  auto second = make_store(*redis_);
  wait_available(*second);
  // The replicas see the fleet differently (each thinks another node has room), as replicas
  // with different loads would; the first script to run decides for both.
  for (std::uint64_t session = 1; session <= 60; ++session) {
    auto a = place_async(*first, request_for(session * 7919, {"a", "b", "c"}));
    auto b = place_async(*second, request_for(session * 7919, {"c", "a", "b"}));
    ASSERT_EQ(a.wait_for(std::chrono::seconds{5}), std::future_status::ready);
    ASSERT_EQ(b.wait_for(std::chrono::seconds{5}), std::future_status::ready);
    const auto placed_a = a.get();
    const auto placed_b = b.get();
    ASSERT_TRUE(placed_a && placed_b) << "session " << session;
    EXPECT_EQ(placed_a->home, placed_b->home) << "session " << session;
  }
}

TEST_F(PlacementStoreTest, NewSessionsOfOneOwnerFillEveryNodeUpToItsFairShare) {
  RedisServer& redis = *redis_;
  // 30 sessions that all have owner a: a takes one while it is below ceil((S + 1) / 3), then the
  // next node clockwise does. The nodes end with 10 each.
  std::map<std::string, int> per_node;
  for (std::uint64_t session = 1; session <= 30; ++session) {
    const auto placed = place(*store, request_for(session, {"a", "b", "c"}));
    ASSERT_TRUE(placed);
    EXPECT_FALSE(placed->failover);
    ++per_node[placed->home];
  }
  EXPECT_EQ(per_node["a"], 10);
  EXPECT_EQ(per_node["b"], 10);
  EXPECT_EQ(per_node["c"], 10);
  // A placed session keeps its node, whatever the counts say now.
  EXPECT_EQ(place(*store, request_for(2, {"a", "b", "c"}))->home, "b");
  EXPECT_EQ(redis.cli({"ZCARD", "llmgw:n:a"}), "10");
}

TEST_F(PlacementStoreTest, AFailoverPlacementReturnsToTheOwnerOnceItIsHealthy) {
  RedisServer& redis = *redis_;
  const auto away = place(*store, request_for(42, {"a", "b", "c"}, /*down=*/{"a"}));
  ASSERT_TRUE(away);
  EXPECT_EQ(*away, (Placement{"b", true}));
  // While a is down the session stays on b; once a is healthy the placement ends and a takes it.
  EXPECT_EQ(*place(*store, request_for(42, {"a", "b", "c"}, {"a"})), (Placement{"b", true}));
  EXPECT_EQ(*place(*store, request_for(42, {"a", "b", "c"})), (Placement{"a", false}));
  EXPECT_EQ(redis.cli({"ZCARD", "llmgw:n:b"}), "0");
}

TEST_F(PlacementStoreTest, ATouchWritesBackAPlacementThatRedisLost) {
  RedisServer& redis = *redis_;
  // Two sessions owned by a: the second goes to b (a is at its share).
  ASSERT_EQ(place(*store, request_for(1, {"a", "b", "c"}))->home, "a");
  const auto spilled = place(*store, request_for(2, {"a", "b", "c"}));
  ASSERT_EQ(spilled->home, "b");
  ASSERT_EQ(redis.cli({"FLUSHALL"}), "OK");

  std::promise<std::optional<Placement>> touched;
  store->touch(2, *spilled, milliseconds{60'000},
               [&touched](std::optional<Placement> stored) { touched.set_value(stored); });
  auto future = touched.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds{5}), std::future_status::ready);
  EXPECT_EQ(future.get(), spilled);
  // Another replica asking now finds b, not the owner a that an empty store would give.
  auto other = make_store(redis);
  wait_available(*other);
  EXPECT_EQ(place(*other, request_for(2, {"a", "b", "c"}))->home, "b");
}

// The placement a claim leaves in Redis (and the node sets), through the store's callback.
std::optional<Placement> claim(PlacementStore& store, std::uint64_t position, const Placement& used,
                               const Placement& late) {
  std::promise<std::optional<Placement>> claimed;
  store.claim(position, used, late, milliseconds{60'000},
              [&claimed](std::optional<Placement> stored) { claimed.set_value(stored); });
  auto future = claimed.get_future();
  if (future.wait_for(std::chrono::seconds{5}) != std::future_status::ready) {
    ADD_FAILURE() << "the store did not answer the claim within 5 s";
    return std::nullopt;
  }
  return future.get();
}

TEST_F(PlacementStoreTest, AClaimRewritesALatePlacementToTheNodeUsedButNotAnotherReplicasMove) {
  RedisServer& redis = *redis_;
  ASSERT_EQ(place(*store, request_for(1, {"a", "b", "c"}))->home, "a");
  // Session 2 (owner a) is placed on b; its request, tired of waiting, went to a.
  const auto late = place(*store, request_for(2, {"a", "b", "c"}));
  ASSERT_EQ(late->home, "b");
  EXPECT_EQ(claim(*store, 2, Placement{"a", false}, *late), (Placement{"a", false}));
  EXPECT_EQ(redis.cli({"ZCARD", "llmgw:n:a"}), "2");
  EXPECT_EQ(redis.cli({"ZCARD", "llmgw:n:b"}), "0");
  auto other = make_store(redis);
  wait_available(*other);
  EXPECT_EQ(place(*other, request_for(2, {"a", "b", "c"}))->home, "a");

  // Session 3 went to c on another replica after the late answer b: that move stands.
  const auto moved = place(*store, request_for(3, {"c", "a", "b"}));
  ASSERT_EQ(moved->home, "c");
  EXPECT_EQ(claim(*store, 3, Placement{"a", false}, Placement{"b", false}), moved);
  EXPECT_EQ(redis.cli({"ZCARD", "llmgw:n:c"}), "1");
}

TEST_F(PlacementStoreTest, ASessionRoutedWhileTheStoreWasAwayIsPlacedWhereItWent) {
  // Session 5 (owner a, which has room) went to c while Redis could not be asked: c has its cache.
  store->note_fallback(5, Placement{"c", false}, milliseconds{60'000});
  EXPECT_EQ(place(*store, request_for(5, {"a", "b", "c"})), (Placement{"c", false}));
  // A session the store already holds keeps its placement whatever this replica routed.
  store->note_fallback(5, Placement{"b", false}, milliseconds{60'000});
  EXPECT_EQ(place(*store, request_for(5, {"a", "b", "c"})), (Placement{"c", false}));
  // A node that may not keep placements (down, or without the model) is no hint.
  store->note_fallback(6, Placement{"c", false}, milliseconds{60'000});
  EXPECT_EQ(place(*store, request_for(6, {"a", "b", "c"}, /*down=*/{"c"}))->home, "a");
}

TEST_F(PlacementStoreTest, IsUnavailableWhileRedisIsDownAndPlacesAgainAfterItRestarts) {
  RedisServer& redis = *redis_;
  redis.stop();
  ASSERT_TRUE(wait_until([&] { return !store->available(); }, milliseconds{5'000}));
  EXPECT_FALSE(place(*store, request_for(5, {"a", "b", "c"}))) << "no connection: no placement";
  redis.start();
  wait_available(*store);
  EXPECT_EQ(place(*store, request_for(5, {"a", "b", "c"}))->home, "a");
}

TEST_F(PlacementStoreTest, ARedisThatHangsMakesItUnavailableWithinTheTimeoutUntilItAnswersAgain) {
  RedisServer& redis = *redis_;
  store = make_store(redis, milliseconds{20});
  wait_available(*store);
  redis.pause();
  auto unanswered = place_async(*store, request_for(9, {"a", "b", "c"}));
  const auto paused_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { return !store->available(); }, milliseconds{2'000}))
      << "a command unanswered past the timeout must make the store unavailable";
  // Generous: the watchdog ticks every 10 ms; what matters is that it is not the 1 s drop.
  EXPECT_LT(std::chrono::steady_clock::now() - paused_at, milliseconds{900});
  redis.resume();
  wait_available(*store);
  EXPECT_EQ(unanswered.wait_for(std::chrono::seconds{5}), std::future_status::ready);
  EXPECT_EQ(unanswered.get(), (Placement{"a", false})) << "the late answer still arrives";
  EXPECT_TRUE(place(*store, request_for(10, {"a", "b", "c"}))) << "and the store places again";
}

}  // namespace
}  // namespace llmgw::testing
