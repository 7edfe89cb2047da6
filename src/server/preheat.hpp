#pragma once

// Internal: cache preheating (docs/DESIGN.md §2.4). When a published change (PATCH /admin/nodes
// draining or weight, a node added or removed, a reload) moves a session to another node, its
// next turn would pay a cold prefill of its whole history there. The gateway knows the move
// before the turn, and the turn starts with the session's last prompt (routing/prompt_store.hpp),
// so it sends that prompt to the new node in the background first:
//
// - which sessions: every session with a kept prompt whose next turn, planned on the new snapshot
//   as the proxy would plan it, goes to another node than the one that served its last turn.
//   Under balance_by: sessions a session whose home may no longer keep it (draining, removed,
//   without its model) is placed now, so the preheat and the next turn go to the same node.
// - what: the kept body with generation cut to one token and no stream (Ollama:
//   options.num_predict 1, stream false; Ollama reads num_predict 0 as "no limit", so 1 is its
//   minimum; OpenAI-compatible: max_tokens 1, stream false), to the same path, without any of
//   the client's headers. The answer is read and discarded; only its token counts are kept.
// - where the session's next turn goes: under balance_by: sessions the placement (above); under
//   the ring modes the key's node on the plain ring (its owner, or the next healthy holder when
//   the owner is down), not where the in-flight counts of that moment would spill it, and the
//   turn is then tried on the preheated node first whatever its in-flight count
//   (lead_with_preheated), so the preheat and the turn agree.
// - never to a node without the model: with the catalog on, the new node's entry must be current
//   and list the model (a node just added is waited for, up to preheat.max_wait_ms).
// - as the lowest priority class (AdmissionGate::try_admit_idle): a preheat waits behind every
//   client request for a slot on its node, up to preheat.max_wait_ms (then skipped: node_busy).
//   It does not count as in flight for bounded loads. A slot it holds is held to its end (a node
//   cannot be interrupted mid-prefill): max_per_node bounds that.
// - bounded: at most preheat.max_per_node preheats running or queued per node and
//   preheat.max_total in all; more are skipped (cap). One preheat per session and new node.
// - a failure changes nothing: the session's next turn goes where it would have gone, cold.
// - failover and return: a session placed away from its unhealthy owner returns when the owner is
//   healthy again, but only after a preheat of the owner ended. The session table asks
//   may_return() at the session's next turn; the first ask begins the preheat (and that turn
//   stays on the failover node, where its cache is); the session returns at the first turn after
//   the preheat completed, failed or was skipped, or at once when no prompt is kept.
// - several replicas (routing.placement_store): the store places a moved session (one node for
//   every replica) and the replica that claims the preheat first in Redis sends it; the others
//   skip it (other_replica), as every replica does while the store is away.
// - warm on arrival (preheat.warm_on_arrival): when a node is ejected, the sessions whose last
//   turn it served are preheated on their failover node at once, when the history's estimated
//   cold prefill there (the node's learned prefill rate) is at least arrival_min_prefill.
//
// Thread safety: the store and the metrics are thread-safe; the Preheater runs on the control
// thread (changes are posted to it).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog.hpp"
#include "gateway_state.hpp"

namespace llmgw::server::detail {

// The paths whose bodies are kept and preheated: /api/chat, /api/generate,
// /v1/chat/completions, /v1/completions.
bool is_preheatable_path(std::string_view path) noexcept;

// The body a preheat sends for a client's `body` on `path`: generation cut to one token, no
// stream. nullopt when `body` is not a JSON object.
std::optional<std::string> preheat_body(std::string_view path, const std::string& body);

// The proxy's account step, after a relayed 2xx turn of a keyed request: keeps its body as the
// session's last prompt (a no-op for other paths, or with preheat.max_bytes 0).
void remember_turn(SharedState& shared, const Snapshot& snapshot, std::uint64_t position,
                   std::string_view path, const std::string& body, const UpstreamNode& node);

// True when `node` was preheated for this session's next turn (the turn about to be relayed
// from it says X-Gateway-Preheated: true).
bool lands_preheated(SharedState& shared, std::uint64_t position, const UpstreamNode& node);

// The proxy's plan step under the ring modes (no session table): a session with a preheat sent
// to (or completed on) a healthy holder of its model has its turn tried there first, whatever
// that node's in-flight count (the bounded-load cap is not applied to the turn a node was warmed
// for: anywhere else it is a cold prefill of the whole history). Once per move: the mark ends
// when a turn of the session is served there.
void lead_with_preheated(SharedState& shared, const Snapshot& snapshot, std::uint64_t position,
                         const routing::Eligibility& eligibility, routing::RoutePlan& plan);

// A turn whose session has a preheat still running on the plan's first node would prefill its
// history a second time beside it. Instead: when the node that served its last turn (where the
// history is cached now) is healthy, not draining and holds the model, the turn goes there first
// (a node was added, say: the preheat readies the new node for the turn after); otherwise (its
// node drains or is gone) it waits for the preheat to end, at most what a cold prefill of the
// kept history would take on the new node (its learned prefill rate; 1 s without one) and half
// the time left before `deadline`, the client watched (await_running_preheat: false when the
// client left).
// Returns the kept body's size when the turn must wait (the preheat runs on plan.first()), after
// moving the last turn's node first in `plan` when that is where the turn goes instead; no
// coroutine, so the common case (no preheat running) costs a lookup.
std::optional<std::size_t> meet_running_preheat(SharedState& shared, const Snapshot& snapshot,
                                                std::uint64_t position,
                                                const routing::Eligibility& eligibility,
                                                routing::RoutePlan& plan);
// The wait on `node`, for a kept body of `bytes`.
asio::awaitable<bool> await_running_preheat(SharedState& shared, ClientConnection& connection,
                                            std::uint64_t position, const UpstreamNode& node,
                                            std::size_t bytes, const std::string& model,
                                            std::chrono::steady_clock::time_point deadline);

class Preheater {
 public:
  // Registers SharedState::on_published (construct it before the workers run).
  Preheater(SharedState& shared, asio::io_context& control);
  Preheater(const Preheater&) = delete;
  Preheater& operator=(const Preheater&) = delete;

 private:
  // Any thread, under the session table's lock: may the failover session at `position` return
  // to `owner` now? Begins the return preheat on first ask (posted to the control thread).
  bool may_return(std::uint64_t position, const std::string& owner);
  // On the control thread, when `owner` is taken back: the return preheats of the sessions
  // placed away from it by failover begin at once, with their latest prompts, so a session
  // whose next turn comes after its preheat ended returns at once, warm.
  void plan_returns(const std::string& owner);
  // On the control thread: the return preheat begun by may_return, sent or skipped.
  void start_return(std::uint64_t position, const std::string& owner);
  // Why a session is preheated: a planned move (a published change), or warm on arrival (its
  // node was ejected: its next turn fails over).
  enum class Move : std::uint8_t { planned, arrival };
  // On the control thread: the sessions `after` moves, each preheated or skipped.
  void plan_moves(const std::shared_ptr<const Snapshot>& after);
  // On the control thread (preheat.warm_on_arrival): the sessions whose last turn `ejected`
  // served, each preheated on its failover node when the cost model says it pays, or skipped.
  void plan_arrivals(const std::string& ejected);
  // One session's next node in `after`, preheated unless it stays (or is skipped).
  void plan_move(const std::shared_ptr<const Snapshot>& after, std::uint64_t position,
                 routing::StoredPrompt prompt, Move move,
                 std::chrono::steady_clock::time_point now);
  // The checks before a preheat of `node` (already there, worth it on arrival, caps), and its
  // mark in the store and the counts when they pass.
  bool reserve(const Snapshot& snapshot, const UpstreamNode& node, std::uint64_t position,
               const routing::StoredPrompt& prompt, const std::string& model, Move move);
  // Placed sessions that `after` moves (home draining or gone) but whose prompt is not kept.
  void count_unkept_moves(const Snapshot& after,
                          const std::vector<std::pair<std::uint64_t, routing::StoredPrompt>>& kept,
                          std::chrono::steady_clock::time_point now);
  // routing.placement_store: the move of a session whose home may not stay. The store places it
  // (so every replica's next turn goes to the same node), then the preheat is claimed there.
  asio::awaitable<void> shared_move(std::shared_ptr<const Snapshot> after, std::uint64_t position,
                                    routing::StoredPrompt prompt, ModelRoute model, Move move);
  // preheat(), after this replica claimed it in the placement store (when there is one: else at
  // once); counted in per_node_ and total_ by the caller, released here when not claimed.
  asio::awaitable<void> claimed_preheat(std::shared_ptr<const Snapshot> snapshot,
                                        std::shared_ptr<UpstreamNode> target,
                                        std::uint64_t position, routing::StoredPrompt prompt,
                                        std::string model);
  asio::awaitable<void> preheat(std::shared_ptr<const Snapshot> snapshot,
                                std::shared_ptr<UpstreamNode> target, std::uint64_t position,
                                routing::StoredPrompt prompt, std::string model);

  SharedState& shared_;
  asio::io_context& control_;
  // Preheats running or queued, per node id and in all (control thread only).
  std::map<std::string, std::size_t, std::less<>> per_node_;
  std::size_t total_ = 0;
};

}  // namespace llmgw::server::detail
