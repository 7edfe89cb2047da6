// Cache preheating (preheat.hpp): the planned moves of a published change, and one preheat each.

#include "preheat.hpp"

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "catalog.hpp"
#include "fleet_upstream.hpp"
#include "llmgw/admission/wait_estimate.hpp"
#include "llmgw/routing/session_key.hpp"
#include "server/as_tuple.hpp"
#include "shared_placement.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using Clock = std::chrono::steady_clock;
using metrics::PreheatSkip;
using nlohmann::json;
// How often a waiting preheat looks for an idle slot on its node.
constexpr std::chrono::milliseconds kPollInterval{10};

bool is_openai_path(std::string_view path) noexcept {
  return path.starts_with("/v1/");
}

void count_skip(SharedState& shared, PreheatSkip reason) {
  shared.metrics.preheat().skipped[static_cast<std::size_t>(reason)]->Increment();
}

// Under balance_by: sessions, where the session's placement stands in `snapshot`: none (a fresh
// table: its next turn is placed afresh), a home that may stay (its index), or one it leaves.
struct Home {
  bool placed = false;
  std::optional<std::size_t> stays;
};
Home home_in(const Snapshot& snapshot, std::uint64_t position,
             const routing::Eligibility& eligibility, Clock::time_point now) {
  const std::string home = snapshot.sessions->home_of(position, now);
  if (home.empty()) {
    return {};
  }
  for (std::size_t i = 0; i < snapshot.nodes.size(); ++i) {
    if (snapshot.nodes[i]->id == home && eligibility.holders.contains(i) &&
        snapshot.nodes[i]->healthy.load()) {
      return {true, i};
    }
  }
  return {true, std::nullopt};
}

// The node the session's next turn goes to in `snapshot`, planned as the proxy plans it. Under
// balance_by: sessions a placement that may stay is kept untouched; one that may not (its home
// drains, left, lacks the model, is down) is replaced now, so the turn finds the new placement;
// a session without a placement is left alone (nullopt). Under the ring modes the plain ring's
// node (the owner, or the next healthy holder): the in-flight counts of this moment are not those
// of the turn, which lead_with_preheated sends to the preheated node (docs/DESIGN.md §2.4; with
// them, a change made while the owner had a request in flight preheated a node the turn skipped).
std::optional<std::size_t> next_node(const Snapshot& snapshot, std::uint64_t position,
                                     const routing::Eligibility& eligibility,
                                     std::int64_t in_flight, Clock::time_point now) {
  if (snapshot.sessions) {
    const Home home = home_in(snapshot, position, eligibility, now);
    if (!home.placed || home.stays) {
      return home.stays;
    }
    const auto plan = snapshot.sessions->plan(snapshot.table, position, in_flight, snapshot.policy,
                                              now, eligibility);
    return plan.empty() ? std::nullopt : std::optional{std::size_t{plan.first()}};
  }
  routing::RoutingPolicy plain_ring = snapshot.policy;
  plain_ring.balance_factor = 0;
  const auto plan = routing::plan_keyed(snapshot.table, position, 0, plain_ring, eligibility);
  return plan.empty() ? std::nullopt : std::optional{std::size_t{plan.first()}};
}

// What a completed preheat cost the node: its prompt tokens and prefill time (Ollama's
// prompt_eval_count and prompt_eval_duration in ns; OpenAI's usage.prompt_tokens).
void count_cost(SharedState& shared, const std::string& answer) {
  const auto parsed = json::parse(answer, nullptr, false);
  if (!parsed.is_object()) {
    return;
  }
  auto& preheat = shared.metrics.preheat();
  const auto number = [](const json& value) {
    return value.is_number() ? value.get<double>() : 0.0;
  };
  if (parsed.contains("prompt_eval_count")) {
    preheat.prompt_tokens->Increment(number(parsed["prompt_eval_count"]));
    preheat.prompt_eval_seconds->Increment(number(parsed.value("prompt_eval_duration", json{})) /
                                           1e9);
  } else if (parsed.contains("usage") && parsed["usage"].is_object()) {
    preheat.prompt_tokens->Increment(number(parsed["usage"].value("prompt_tokens", json{})));
  }
}

// Waits (bounded by `deadline`) for the node's catalog entry: true when the node holds `model`
// (or nothing can be known: the catalog is off, no model named).
asio::awaitable<bool> node_holds(asio::io_context& io, const Snapshot& snapshot,
                                 const UpstreamNode& node, const std::string& model,
                                 Clock::time_point deadline) {
  if (model.empty() || snapshot.config().catalog.interval.count() == 0) {
    co_return true;
  }
  asio::steady_timer timer(io);
  for (;;) {
    const auto models = node.models.load(std::memory_order_acquire);
    if (models && models->current) {
      co_return models->holds(model);
    }
    if (Clock::now() >= deadline) {
      co_return false;  // a node whose models are unknown gets no preheat
    }
    timer.expires_after(kPollInterval * 5);
    co_await timer.async_wait(kAsTuple);
  }
}

// A slot of the lowest class (AdmissionGate::try_admit_idle), polled until `deadline`.
asio::awaitable<AdmissionGate::Permit> idle_slot(asio::io_context& io, UpstreamNode& node,
                                                 const std::string& model,
                                                 Clock::time_point deadline) {
  asio::steady_timer timer(io);
  for (;;) {
    auto permit = node.admission.try_admit_idle(model);
    if (permit.held() || Clock::now() >= deadline) {
      co_return permit;
    }
    timer.expires_after(kPollInterval);
    co_await timer.async_wait(kAsTuple);
  }
}

// One replica's claim of a session's preheat on `node` (PlacementStore::claim_preheat), awaited
// up to `wait`: false when another replica has it, or when the store does not answer.
asio::awaitable<bool> claim_preheat(routing::PlacementStore& store, std::uint64_t position,
                                    const std::string& node, std::chrono::milliseconds ttl,
                                    Clock::duration wait) {
  if (!store.available()) {
    co_return false;
  }
  struct Pending {
    explicit Pending(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool claimed = false;
  };
  auto pending = std::make_shared<Pending>(co_await asio::this_coro::executor);
  pending->timer.expires_after(wait);
  store.claim_preheat(position, node, ttl, [pending](bool claimed) {
    asio::post(pending->timer.get_executor(), [pending, claimed] {
      pending->claimed = claimed;
      pending->timer.cancel();
    });
  });
  co_await pending->timer.async_wait(kAsTuple);
  co_return pending->claimed;
}

}  // namespace

bool is_preheatable_path(std::string_view path) noexcept {
  return path == "/api/chat" || path == "/api/generate" || path == "/v1/chat/completions" ||
         path == "/v1/completions";
}

std::optional<std::string> preheat_body(std::string_view path, const std::string& body) {
  auto parsed = json::parse(body, nullptr, false);
  if (!parsed.is_object()) {
    return std::nullopt;
  }
  parsed["stream"] = false;
  if (is_openai_path(path)) {
    parsed.erase("stream_options");
    parsed["max_tokens"] = 1;
    if (parsed.contains("max_completion_tokens")) {
      parsed["max_completion_tokens"] = 1;
    }
  } else {
    if (!parsed.contains("options") || !parsed["options"].is_object()) {
      parsed["options"] = json::object();
    }
    parsed["options"]["num_predict"] = 1;  // Ollama: 0 would mean "no limit"
  }
  return parsed.dump();
}

void remember_turn(SharedState& shared, const Snapshot& snapshot, std::uint64_t position,
                   std::string_view path, const std::string& body, const UpstreamNode& node) {
  if (snapshot.config().preheat.max_bytes == 0 || !is_preheatable_path(path)) {
    return;
  }
  const auto now = Clock::now();
  shared.prompts.remember(position, std::string{path}, body, node.id, now);
}

bool lands_preheated(SharedState& shared, std::uint64_t position, const UpstreamNode& node) {
  return shared.prompts.preheated_on(position, node.id);
}

void lead_with_preheated(SharedState& shared, const Snapshot& snapshot, std::uint64_t position,
                         const routing::Eligibility& eligibility, routing::RoutePlan& plan) {
  if (plan.empty() || snapshot.config().preheat.max_bytes == 0) {
    return;
  }
  const std::string target = shared.prompts.preheat_target(position);
  if (target.empty()) {
    return;
  }
  for (std::size_t i = 0; i < snapshot.nodes.size(); ++i) {
    if (snapshot.nodes[i]->id == target) {
      if (eligibility.holders.contains(i) && snapshot.nodes[i]->healthy.load()) {
        plan = routing::lead_with(snapshot.table, position, plan, i, snapshot.policy, eligibility);
      }
      return;
    }
  }
}

std::optional<std::size_t> meet_running_preheat(SharedState& shared, const Snapshot& snapshot,
                                                std::uint64_t position,
                                                const routing::Eligibility& eligibility,
                                                routing::RoutePlan& plan) {
  if (snapshot.config().preheat.max_bytes == 0 || plan.empty()) {
    return std::nullopt;
  }
  const UpstreamNode& node = snapshot.node(plan.first());
  const auto running = shared.prompts.running_preheat(position, node.id);
  if (!running) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < snapshot.nodes.size(); ++i) {
    const UpstreamNode& last = *snapshot.nodes[i];
    if (last.id == running->served_by && &last != &node) {
      if (eligibility.holders.contains(i) && last.healthy.load() && !last.draining.load()) {
        plan = routing::lead_with(snapshot.table, position, plan, i, snapshot.policy, eligibility);
        return std::nullopt;  // warm where it was; the preheat readies the new node for later
      }
      break;
    }
  }
  return running->bytes;
}

asio::awaitable<bool> await_running_preheat(SharedState& shared, ClientConnection& connection,
                                            std::uint64_t position, const UpstreamNode& node,
                                            std::size_t bytes, const std::string& model,
                                            Clock::time_point deadline) {
  const auto rate =
      node.admission.view(admission::Priority::interactive, model).prefill_seconds_per_token;
  const auto cold = rate ? std::chrono::duration<double>(
                               static_cast<double>(admission::estimate_tokens(bytes)) * *rate)
                         : std::chrono::duration<double>(1.0);
  const auto now = Clock::now();
  const auto until = now + std::min(std::chrono::duration_cast<Clock::duration>(cold),
                                    std::max(Clock::duration{}, (deadline - now) / 2));
  // Polled: the preheat ends on the control thread, and a few milliseconds of granularity are
  // small beside the prefill it saves.
  asio::steady_timer timer{co_await asio::this_coro::executor};
  const WaitWatch watch{connection, timer};  // a client that leaves cancels the timer
  while (Clock::now() < until && shared.prompts.running_preheat(position, node.id)) {
    timer.expires_after(std::chrono::milliseconds{5});
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (connection.watchdog->client_gone()) {
      co_return false;
    }
  }
  co_return true;
}

Preheater::Preheater(SharedState& shared, asio::io_context& control)
    : shared_(shared), control_(control) {
  shared_.on_published = [this](std::shared_ptr<const Snapshot>,
                                std::shared_ptr<const Snapshot> after) {
    asio::post(control_, [this, after = std::move(after)] { plan_moves(after); });
  };
  shared_.may_return = [this](std::uint64_t position, const routing::NodeState& owner) {
    return may_return(position, owner.id);
  };
  shared_.on_ejected = [this](const std::string& node) {
    asio::post(control_, [this, node] { plan_arrivals(node); });
  };
  shared_.on_readmitted = [this](const std::string& node) {
    asio::post(control_, [this, node] { plan_returns(node); });
  };
}

bool Preheater::may_return(std::uint64_t position, const std::string& owner) {
  if (shared_.current()->config().preheat.max_bytes == 0) {
    return true;
  }
  switch (shared_.prompts.return_preheat(position, owner)) {
    case routing::ReturnPreheat::started:
      asio::post(control_, [this, position, owner] { start_return(position, owner); });
      return false;
    case routing::ReturnPreheat::pending:
      return false;
    case routing::ReturnPreheat::no_prompt:
    case routing::ReturnPreheat::completed:
    case routing::ReturnPreheat::failed:
      break;
  }
  return true;
}

void Preheater::plan_returns(const std::string& owner) {
  const auto snapshot = shared_.current();
  if (snapshot->config().preheat.max_bytes == 0 || !snapshot->sessions) {
    return;  // (the ring modes return at once: no placement holds a session away)
  }
  const auto now = Clock::now();
  for (const auto& [position, placement] : snapshot->sessions->placements(now)) {
    if (!placement.failover || placement.home == owner) {
      continue;
    }
    // Its owner (the failover placement ends when the owner is healthy again).
    const auto first = routing::owner_of(snapshot->table, position, {});
    if (first && snapshot->table.node(*first).id == owner &&
        shared_.prompts.return_preheat(position, owner) == routing::ReturnPreheat::started) {
      start_return(position, owner);
    }
  }
}

void Preheater::start_return(std::uint64_t position, const std::string& owner) {
  const auto snapshot = shared_.current();
  const auto& config = snapshot->config();
  const auto prompt = shared_.prompts.find(position, Clock::now());
  std::shared_ptr<UpstreamNode> target;
  for (const auto& node : snapshot->nodes) {
    if (node->id == owner) {
      target = node;
    }
  }
  if (!prompt || !target || prompt->preheat_node != owner) {
    shared_.prompts.end_preheat(position, owner, false);  // it returns at once
    return;
  }
  if (per_node_[owner] >= config.preheat.max_per_node || total_ >= config.preheat.max_total) {
    count_skip(shared_, PreheatSkip::cap);
    shared_.prompts.end_preheat(position, owner, false);
    return;
  }
  if (shared_.catalog_refresh) {
    shared_.catalog_refresh(owner);  // its entry went stale while it was down: the preheat waits
  }
  const auto fields = routing::scan_body(*prompt->body, config.routing.prefix_bytes, true);
  ++per_node_[owner];
  ++total_;
  asio::co_spawn(control_,
                 claimed_preheat(snapshot, std::move(target), position, *prompt,
                                 route_model(*snapshot, fields.model).model),
                 asio::detached);
}

void Preheater::count_unkept_moves(
    const Snapshot& after, const std::vector<std::pair<std::uint64_t, routing::StoredPrompt>>& kept,
    Clock::time_point now) {
  if (!after.sessions) {
    return;  // without placements the sessions the gateway knows are those it kept
  }
  std::unordered_set<std::uint64_t> with_prompt;
  for (const auto& entry : kept) {
    with_prompt.insert(entry.first);
  }
  for (const auto& [position, placement] : after.sessions->placements(now)) {
    const UpstreamNode* home = after.find(placement.home);
    const bool moves = home == nullptr || home->draining.load(std::memory_order_relaxed);
    if (moves && !with_prompt.contains(position)) {
      count_skip(shared_, PreheatSkip::no_prompt);
    }
  }
}

void Preheater::plan_moves(const std::shared_ptr<const Snapshot>& after) {
  const auto& config = after->config();
  if (config.preheat.max_bytes == 0 || after != shared_.current()) {
    return;  // (a newer change is queued behind this one and plans from its own snapshot)
  }
  const auto now = Clock::now();
  auto kept = shared_.prompts.live(now);
  count_unkept_moves(*after, kept, now);
  for (auto& [position, prompt] : kept) {
    plan_move(after, position, std::move(prompt), Move::planned, now);
  }
}

void Preheater::plan_arrivals(const std::string& ejected) {
  const auto snapshot = shared_.current();
  const auto& config = snapshot->config().preheat;
  if (config.max_bytes == 0 || !config.warm_on_arrival) {
    return;
  }
  const auto now = Clock::now();
  for (auto& [position, prompt] : shared_.prompts.live(now)) {
    if (prompt.node == ejected) {  // its last turn was served there: its next one fails over
      plan_move(snapshot, position, std::move(prompt), Move::arrival, now);
    }
  }
}

void Preheater::plan_move(const std::shared_ptr<const Snapshot>& after, std::uint64_t position,
                          routing::StoredPrompt prompt, Move move, Clock::time_point now) {
  const auto fields = routing::scan_body(*prompt.body, after->config().routing.prefix_bytes, true);
  ModelRoute model = route_model(*after, fields.model);
  if (shared_.placement_store) {
    // The store places the session (the same node for every replica); one replica preheats.
    if (const Home home = home_in(*after, position, model.eligibility, now);
        home.placed && !home.stays) {
      asio::co_spawn(control_,
                     shared_move(after, position, std::move(prompt), std::move(model), move),
                     asio::detached);
    }
    return;
  }
  const auto in_flight = shared_.total_in_flight.load(std::memory_order_relaxed);
  const auto target = next_node(*after, position, model.eligibility, in_flight, now);
  if (!target) {
    return;
  }
  auto node = after->nodes[*target];
  if (reserve(*after, *node, position, prompt, model.model, move)) {
    asio::co_spawn(control_, preheat(after, std::move(node), position, prompt, model.model),
                   asio::detached);
  }
}

bool Preheater::reserve(const Snapshot& snapshot, const UpstreamNode& node, std::uint64_t position,
                        const routing::StoredPrompt& prompt, const std::string& model, Move move) {
  const auto& config = snapshot.config().preheat;
  if (node.id == prompt.node || node.id == prompt.preheat_node) {
    return false;  // stays, or is already being warmed there
  }
  if (move == Move::arrival) {
    // It pays when the cold prefill it takes off the next turn is long enough to matter; without
    // a learned prefill rate for the node the cost model cannot say (docs/DESIGN.md §2.4).
    const auto rate =
        node.admission.view(admission::Priority::batch, model).prefill_seconds_per_token;
    const double cold_seconds =
        rate ? static_cast<double>(admission::estimate_tokens(prompt.body->size())) * *rate : 0.0;
    if (cold_seconds < std::chrono::duration<double>(config.arrival_min_prefill).count() || !rate) {
      count_skip(shared_, PreheatSkip::not_worth);
      return false;
    }
  }
  if (per_node_[node.id] >= config.max_per_node || total_ >= config.max_total) {
    count_skip(shared_, PreheatSkip::cap);
    return false;
  }
  if (!shared_.prompts.begin_preheat(position, node.id)) {
    return false;
  }
  ++per_node_[node.id];
  ++total_;
  return true;
}

asio::awaitable<void> Preheater::shared_move(std::shared_ptr<const Snapshot> after,
                                             std::uint64_t position, routing::StoredPrompt prompt,
                                             ModelRoute model, Move move) {
  const auto plan =
      co_await place_shared(shared_, after, position, model.eligibility, Clock::now());
  if (plan.empty()) {
    co_return;
  }
  auto node = after->nodes[plan.first()];
  if (reserve(*after, *node, position, prompt, model.model, move)) {
    co_await claimed_preheat(after, std::move(node), position, std::move(prompt),
                             std::move(model.model));
  }
}

asio::awaitable<void> Preheater::claimed_preheat(std::shared_ptr<const Snapshot> snapshot,
                                                 std::shared_ptr<UpstreamNode> target,
                                                 std::uint64_t position,
                                                 routing::StoredPrompt prompt, std::string model) {
  bool claimed = true;
  if (shared_.placement_store) {
    // (Not inside the condition: GCC 12 miscompiles a co_await under && in a coroutine.)
    claimed = co_await claim_preheat(*shared_.placement_store, position, target->id,
                                     snapshot->config().routing.session_idle,
                                     snapshot->config().preheat.max_wait);
  }
  if (!claimed) {
    count_skip(shared_, PreheatSkip::other_replica);
    shared_.prompts.end_preheat(position, target->id, false);
    --per_node_[target->id];
    --total_;
    co_return;
  }
  co_await preheat(std::move(snapshot), std::move(target), position, std::move(prompt),
                   std::move(model));
}

asio::awaitable<void> Preheater::preheat(std::shared_ptr<const Snapshot> snapshot,
                                         std::shared_ptr<UpstreamNode> target,
                                         std::uint64_t position, routing::StoredPrompt prompt,
                                         std::string model) {
  const auto& config = snapshot->config().preheat;
  auto& metrics = shared_.metrics.preheat();
  const auto started = Clock::now();
  const auto deadline = started + config.max_wait;
  bool completed = false;
  const auto body = preheat_body(prompt.path, *prompt.body);
  if (!(co_await node_holds(control_, *snapshot, *target, model, deadline))) {
    count_skip(shared_, PreheatSkip::no_model);
  } else if (!body) {
    metrics.failed->Increment();
  } else if (auto permit = co_await idle_slot(control_, *target, model, deadline); !permit.held()) {
    count_skip(shared_, PreheatSkip::node_busy);
  } else {
    metrics.sent->Increment();
    FleetCallLimits limits;
    limits.connect = snapshot->config().timeouts.connect;
    limits.head = config.timeout;
    limits.idle = config.timeout;
    limits.deadline = Clock::now() + config.timeout;
    FleetCancel cancel;
    const auto answer = co_await call_node(*target, beast::http::verb::post, prompt.path, *body,
                                           /*authorization=*/{}, limits, cancel);
    permit.release(false);  // not a client's service time: the warm-wait estimate ignores it
    completed = answer.answered() && answer.status / 100 == 2;
    if (completed) {
      metrics.completed->Increment();
      count_cost(shared_, answer.body);
    } else {
      metrics.failed->Increment();
      // The node's problem, never the prompt.
      spdlog::debug("preheat of node {} failed: {}", target->id, answer.problem());
    }
  }
  shared_.prompts.end_preheat(position, target->id, completed);
  --per_node_[target->id];
  --total_;
}

}  // namespace llmgw::server::detail
