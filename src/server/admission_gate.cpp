#include "admission_gate.hpp"

#include <prometheus/gauge.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway_state.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {

struct AdmissionGate::Waiter {
  explicit Waiter(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;  // touched only on its own worker's thread
  bool granted = false;      // guarded by the gate's mutex
};

AdmissionGate::AdmissionGate(metrics::NodeAdmissionMetrics& node_metrics,
                             const config::NodeConfig& node,
                             const config::AdmissionConfig& admission)
    : metrics_(node_metrics),
      cap_(node.max_in_flight),
      per_model_cap_(node.max_in_flight_per_model),
      interactive_reserve_(admission.interactive_reserve),
      // A new node holds one session's reserve for the first window: the first turns of a fleet
      // that starts under a batch flood find their slot too.
      reserve_(admission.interactive_reserve, admission.interactive_reserve_idle, Clock::now()),
      queue_(admission.batch_aging) {
  metrics_.max_in_flight->Set(static_cast<double>(cap_));
}

AdmissionGate::~AdmissionGate() = default;

void AdmissionGate::configure(const config::NodeConfig& node,
                              const config::AdmissionConfig& admission) {
  std::vector<std::shared_ptr<Waiter>> granted;
  {
    std::lock_guard lock(mutex_);
    cap_ = node.max_in_flight;
    per_model_cap_ = node.max_in_flight_per_model;
    interactive_reserve_ = admission.interactive_reserve;
    reserve_.configure(admission.interactive_reserve, admission.interactive_reserve_idle);
    queue_.set_batch_aging(admission.batch_aging);
    metrics_.max_in_flight->Set(static_cast<double>(cap_));
    granted = dispatch_locked(Clock::now());
  }
  wake(granted);
}

AdmissionGate::Permit& AdmissionGate::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    release(false);
    gate_ = std::exchange(other.gate_, nullptr);
    model_ = std::move(other.model_);
    priority_ = other.priority_;
    granted_ = other.granted_;
  }
  return *this;
}

void AdmissionGate::Permit::release(bool completed) noexcept {
  if (gate_ == nullptr) {
    return;
  }
  std::exchange(gate_, nullptr)
      ->release_slot(
          model_, priority_,
          completed ? std::optional<Clock::duration>{Clock::now() - granted_} : std::nullopt);
}

bool AdmissionGate::has_room_locked(const std::string& model, Priority priority,
                                    Clock::time_point now) const {
  if (cap_ == 0) {
    return true;
  }
  if (in_flight_ >= cap_) {
    return false;
  }
  // Batch leaves the active chat sessions' reserve free (but always keeps one slot).
  if (priority == Priority::batch && batch_in_flight_ >= reserve_.batch_limit(cap_, now)) {
    return false;
  }
  if (per_model_cap_ == 0 || model.empty()) {
    return true;
  }
  const auto it = model_in_flight_.find(model);
  return it == model_in_flight_.end() || it->second < per_model_cap_;
}

void AdmissionGate::count_model(std::unordered_map<std::string, std::size_t>& counts,
                                const std::string& model, bool add) noexcept {
  if (model.empty()) {
    return;
  }
  if (add) {
    ++counts[model];
  } else if (const auto it = counts.find(model); it != counts.end() && --it->second == 0) {
    counts.erase(it);
  }
}

void AdmissionGate::admit_locked(const std::string& model, Priority priority, std::uint64_t session,
                                 Clock::time_point now) {
  if (priority == Priority::interactive) {
    reserve_.touch(session, now);
  } else {
    ++batch_in_flight_;
  }
  ++in_flight_;
  count_model(model_in_flight_, model, true);
  metrics_.admitted->Set(static_cast<double>(in_flight_));
}

AdmissionGate::Permit AdmissionGate::try_admit(const std::string& model, Priority priority,
                                               std::uint64_t session) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  if (!has_room_locked(model, priority, now)) {
    return {};
  }
  admit_locked(model, priority, session, now);
  return Permit{this, model, priority};
}

AdmissionGate::Permit AdmissionGate::try_admit_idle(const std::string& model) {
  std::lock_guard lock(mutex_);
  // One slot stays free for a client: a preheat cannot be interrupted once it runs, so a client
  // arriving while preheats fill the node would wait for them or spill away from its cache.
  // Below batch, it also leaves batch's interactive reserve alone.
  const bool headroom = cap_ == 0 || in_flight_ + 1 < cap_;
  const auto now = Clock::now();
  if (queue_.depth() > 0 || !headroom || !has_room_locked(model, Priority::batch, now)) {
    return {};
  }
  admit_locked(model, Priority::batch, admission::InteractiveReserve::kUnkeyed, now);
  return Permit{this, model, Priority::batch};
}

void AdmissionGate::release_slot(const std::string& model, Priority priority,
                                 std::optional<Clock::duration> held) noexcept {
  std::vector<std::shared_ptr<Waiter>> granted;
  {
    std::lock_guard lock(mutex_);
    in_flight_ -= in_flight_ > 0 ? 1 : 0;
    if (priority == Priority::batch) {
      batch_in_flight_ -= batch_in_flight_ > 0 ? 1 : 0;
    }
    count_model(model_in_flight_, model, false);
    metrics_.admitted->Set(static_cast<double>(in_flight_));
    if (held) {
      timings_.observe_service(*held);
      metrics_.service_seconds->Set(timings_.service_seconds().value_or(0.0));
    }
    granted = dispatch_locked(Clock::now());
  }
  wake(granted);
}

std::vector<std::shared_ptr<AdmissionGate::Waiter>> AdmissionGate::dispatch_locked(
    Clock::time_point now) {
  std::vector<std::shared_ptr<Waiter>> granted;
  while (queue_.depth() > 0 && (cap_ == 0 || in_flight_ < cap_)) {
    auto next = queue_.pop_next(now, [this, now](const admission::QueuedRequest& r) {
      return has_room_locked(r.model, r.priority, now);
    });
    if (!next) {
      break;  // what waits is at its model's cap, or batch facing the reserve
    }
    count_model(model_queued_, next->model, false);
    admit_locked(next->model, next->priority, next->session, now);
    const auto it = waiters_.find(next->ticket);
    it->second->granted = true;
    granted.push_back(std::move(it->second));
    waiters_.erase(it);
  }
  if (!granted.empty()) {
    publish_depth_locked();
  }
  return granted;
}

void AdmissionGate::wake(const std::vector<std::shared_ptr<Waiter>>& granted) {
  for (const auto& waiter : granted) {
    asio::post(waiter->timer.get_executor(), [waiter] { waiter->timer.cancel(); });
  }
}

void AdmissionGate::publish_depth_locked() {
  for (std::size_t p = 0; p < admission::kPriorityCount; ++p) {
    metrics_.queue_depth[p]->Set(static_cast<double>(queue_.depth(static_cast<Priority>(p))));
  }
}

asio::awaitable<AdmissionGate::Waited> AdmissionGate::admit(
    asio::io_context& io, ClientConnection& connection, const std::atomic<bool>& drain_cut,
    Priority priority, std::string model, std::uint64_t session, std::size_t max_queue,
    Clock::time_point deadline) {
  Waited result;
  auto waiter = std::make_shared<Waiter>(io);
  const std::uint64_t ticket = [&] {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    if (has_room_locked(model, priority, now)) {
      admit_locked(model, priority, session, now);
      result.outcome = Outcome::admitted;
      result.permit = Permit{this, model, priority};
      return std::uint64_t{0};
    }
    if (queue_.depth(priority) >= max_queue) {
      result.outcome = Outcome::queue_full;
      return std::uint64_t{0};
    }
    const std::uint64_t id = next_ticket_++;
    if (priority == Priority::interactive) {
      reserve_.touch(session, now);  // a waiting chat keeps its session's slot reserved
    }
    queue_.push({id, priority, now, model, session});
    count_model(model_queued_, model, true);
    waiters_.emplace(id, waiter);
    publish_depth_locked();
    return id;
  }();
  if (ticket == 0) {
    co_return result;
  }
  result.queued = true;
  const auto joined = Clock::now();
  // Watch the client while nothing else reads from it: a client that leaves cancels the timer.
  const Watchdog& watchdog = *connection.watchdog;
  const WaitWatch watch{connection, waiter->timer};

  for (;;) {
    waiter->timer.expires_at(deadline);
    co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(mutex_);
    if (waiter->granted) {
      result.outcome = Outcome::admitted;
      result.permit = Permit{this, model, priority};
      break;
    }
    if (watchdog.client_gone()) {
      result.outcome = Outcome::client_gone;
    } else if (drain_cut.load(std::memory_order_relaxed)) {
      result.outcome = Outcome::shutting_down;
    } else if (Clock::now() >= deadline) {
      result.outcome = Outcome::timed_out;
    } else {
      continue;  // woken for nothing that concerns this request
    }
    queue_.remove(ticket);
    count_model(model_queued_, model, false);
    waiters_.erase(ticket);
    publish_depth_locked();
    break;
  }
  result.waited_for = Clock::now() - joined;
  co_return result;
}

AdmissionGate::View AdmissionGate::view(Priority priority, const std::string& model) const {
  std::lock_guard lock(mutex_);
  View view;
  view.cap = cap_;
  view.per_model_cap = per_model_cap_;
  view.interactive_reserve = interactive_reserve_;
  const auto now = Clock::now();
  view.active_sessions = reserve_.active_sessions(now);
  view.reserved = reserve_.reserved(cap_, now);
  view.in_flight = in_flight_;
  view.batch_in_flight = batch_in_flight_;
  for (std::size_t p = 0; p < admission::kPriorityCount; ++p) {
    view.queued[p] = queue_.depth(static_cast<Priority>(p));
  }
  view.ahead = queue_.ahead_of(priority);
  view.room = has_room_locked(model, priority, now);
  view.service_seconds = timings_.service_seconds();
  view.prefill_seconds_per_token = timings_.prefill_seconds_per_token();
  view.cache_reuse = timings_.cache_reuse();
  return view;
}

AdmissionGate::ModelActivity AdmissionGate::activity(const std::string& model) const {
  std::lock_guard lock(mutex_);
  ModelActivity activity;
  for (const auto* counts : {&model_in_flight_, &model_queued_}) {
    activity.this_model = activity.this_model || counts->contains(model);
    activity.other_models =
        activity.other_models || counts->size() > (counts->contains(model) ? 1U : 0U);
  }
  return activity;
}

void AdmissionGate::observe_prefill(std::uint64_t prompt_tokens, double prompt_eval_seconds,
                                    bool affinity) {
  std::lock_guard lock(mutex_);
  timings_.observe_prefill(prompt_tokens, prompt_eval_seconds, affinity);
  if (const auto rate = timings_.prefill_seconds_per_token()) {
    metrics_.prefill_seconds_per_token->Set(*rate);
  }
  if (const auto reuse = timings_.cache_reuse()) {
    metrics_.cache_reuse->Set(*reuse);
  }
}

}  // namespace llmgw::server::detail
