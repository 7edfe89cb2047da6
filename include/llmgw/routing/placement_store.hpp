#pragma once

// Session placements shared by every gateway replica (routing.placement_store; docs/DESIGN.md
// §2.2). The session table (session_table.hpp) places a session on its owner unless the owner
// holds its fair share of live sessions, and remembers the placement; with one replica that
// memory is local, with several it must be common, or two replicas place the same session on two
// nodes. Here it lives in Redis:
//
//   <prefix>p:<position>   "h<node id>" or "f<node id>" (f: a failover placement, which ends
//                          when the owner is healthy again), or "t<node id>" (tentative: where a
//                          replica routed a session the store did not know while it was away;
//                          a placement another replica has cached replaces it), expiring after
//                          the session idle time
//   <prefix>w:<position>   the node a replica is preheating the session on (its next home after a
//                          move; server/preheat.hpp), expiring after the session idle time
//   <prefix>n:<node id>    sorted set of the session positions placed on the node, scored by
//                          their last use (Redis' clock, ms): the node's live sessions are those
//                          used within the idle time
//
// Both are read and written by Lua scripts, which Redis runs atomically: when two replicas place
// the same new session at once, the first script places it and the second finds and returns that
// placement, so both route the session to the same node. A replica caches what it read (the
// session table) and consults the store again only when its cached placement is no longer usable
// (home unhealthy, removed, without the model, idle) — later turns cost no round trip. After each
// cached turn it sends a touch (not awaited): it refreshes the expiry, writes the placement back
// if Redis lost it (a restart without persistence), and returns the stored placement, so a
// replica whose cache disagrees with the store forgets its entry. On every new connection the
// gateway touches all its cached placements (on_ready), so placements that Redis lost in a
// restart are back before the sessions' next turns ask for them.
//
// Thread safety: every member function may be called from any thread. Callbacks run on the
// store's client thread (net::RedisClient) and must not block.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmgw/net/redis_client.hpp"

namespace llmgw::routing {

// Where a session lives, as stored.
struct Placement {
  std::string home;       // node id
  bool failover = false;  // placed away from an unhealthy owner

  bool operator==(const Placement&) const = default;
};

// "h<id>" / "f<id>", and back (nullopt for a value that is none of h, f and t: "t<id>" is a home
// written from a replica's note of a Redis outage, read as "h<id>").
std::string encode_placement(const Placement& placement);
std::optional<Placement> decode_placement(std::string_view value);

// What a replica knows when it asks the store to place a session: every node of its table, in
// the order in which the session table would try them for a new placement (owner first), each
// with what this replica sees of it. The script applies the session cap over the live counts
// held in Redis.
struct PlacementRequest {
  struct Node {
    std::string id;
    double weight = 1.0;
    bool keep = false;  // a placement already there may stay (healthy, holds the model)
    bool fits = false;  // may take a new session (keep, and below this replica's request cap)
  };
  std::uint64_t key_position = 0;
  std::string owner;
  bool owner_healthy = true;
  std::string fallback;       // the home when no node is below its session cap
  double healthy_weight = 1;  // W of the session cap ceil((S + 1) × w / W)
  std::vector<Node> nodes;    // candidates in order, then the others (fits = false)
  std::chrono::milliseconds idle{300'000};
};

struct PlacementStoreOptions {
  net::RedisEndpoint endpoint;
  std::chrono::milliseconds timeout{20};  // a request waits no longer for its placement
  std::string key_prefix = "llmgw:";
  // Called on availability changes, from the client's thread (metrics).
  std::function<void(bool available)> on_availability{};
  // Called from the client's thread each time a connection has become ready (Redis may have
  // restarted and lost every placement): the gateway writes its cached placements back.
  std::function<void(class PlacementStore&)> on_ready{};
};

class PlacementStore {
 public:
  using Done = std::function<void(std::optional<Placement>)>;
  // The placement, and whether this call made it (no placement was kept).
  using PlaceDone = std::function<void(std::optional<Placement>, bool placed_now)>;

  explicit PlacementStore(PlacementStoreOptions options);
  ~PlacementStore();
  PlacementStore(const PlacementStore&) = delete;
  PlacementStore& operator=(const PlacementStore&) = delete;

  // The session's placement: the stored one if it may stay, else a new one (stored). nullopt
  // when the store is unavailable or answers with an error. The caller bounds its wait by
  // timeout(); a late answer is still stored in Redis.
  void place(const PlacementRequest& request, PlaceDone done);

  // After a cached turn: refreshes the placement's expiry (writes `cached` back when Redis has
  // none) and gives the stored placement.
  void touch(std::uint64_t key_position, const Placement& cached, std::chrono::milliseconds idle,
             Done done);

  // A new placement answered after its request stopped waiting: the request went to `used` (the
  // plain ring's node), while the store placed the session as `late` (which may differ under the
  // session caps). Stores `used` if the session is still placed as `late`, so the next turn, on
  // any replica, finds the node that has the session's cache; gives the stored placement (another
  // replica's, when the session has moved meanwhile).
  void claim(std::uint64_t key_position, const Placement& used, const Placement& late,
             std::chrono::milliseconds idle, Done done);

  // Cache preheating with several replicas: each replica that kept the session's last prompt plans
  // the same move, and only one may send the preheat. `done(true)` for the first replica to claim
  // the session's preheat on `node`; false for the others (the same node, within `ttl`), and when
  // the store cannot answer (no replica can be sure, so none preheats). A move to another node is
  // claimed anew.
  void claim_preheat(std::uint64_t key_position, const std::string& node,
                     std::chrono::milliseconds ttl, std::function<void(bool)> done);

  // A session routed by the plain ring because the store could not be asked: where it went (that
  // node has the session's cache now). When the store is available again, each noted session is
  // written to it unless Redis holds a placement for it (another replica's), so every replica's
  // next turn of the session finds that node; until then this replica's next placement of the
  // session (place()) prefers it. At most kMaxFallbacks are kept (an outage longer than that:
  // the rest are placed afresh), each for `idle`.
  void note_fallback(std::uint64_t key_position, const Placement& used,
                     std::chrono::milliseconds idle);
  static constexpr std::size_t kMaxFallbacks = 100'000;

  // Connected and answering within timeout(); when false, callers do not ask (plain ring).
  bool available() const noexcept;
  std::chrono::milliseconds timeout() const noexcept { return options_.timeout; }

  void stop();

 private:
  struct Fallback {
    Placement used;
    std::chrono::steady_clock::time_point expires;
    std::chrono::milliseconds idle{0};
  };
  std::string take_fallback(std::uint64_t key_position);
  void write_fallbacks();  // on the client's thread, when the store is available again
  void touch_value(std::uint64_t key_position, std::string value, std::chrono::milliseconds idle,
                   Done done);

  PlacementStoreOptions options_;
  std::mutex fallbacks_mutex_;
  std::unordered_map<std::uint64_t, Fallback> fallbacks_;  // by session position
  std::unique_ptr<net::RedisClient> client_;
};

}  // namespace llmgw::routing
