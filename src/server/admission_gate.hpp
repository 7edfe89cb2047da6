#pragma once

// Internal: one node's admission (docs/DESIGN.md §2.2). At most `cap` generating requests hold a
// slot on the node at once (and at most `per_model_cap` of one model); the rest wait here, in
// the node's AdmissionQueue (llmgw/admission/admission_queue.hpp: interactive first, aged batch
// by arrival), never on the node. Batch requests hold at most cap - the node's interactive reserve
// (llmgw/admission/interactive_reserve.hpp: interactive_reserve slots per chat session active
// here within admission.interactive_reserve_idle_ms, at least one slot left to batch): a chat
// turn then finds a slot free instead of waiting for a summary to end (slots are not preempted).
//
// Threads: a node's requests come from every worker thread, so one mutex guards the counts and
// the queue. A waiting request sleeps on a steady_timer of its own worker; whoever frees a slot
// marks the waiter granted under the mutex (the slot is its from then on) and wakes it by posting
// the timer's cancellation to the waiter's own executor, so a timer is only ever touched on its
// own thread. A waiter woken for another reason (its client left: the watchdog cancels the same
// timer; the drain deadline; its wait ended) takes itself out of the queue under the mutex, unless
// it was granted meanwhile, in which case it has the slot.

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmgw/admission/admission_queue.hpp"
#include "llmgw/admission/interactive_reserve.hpp"
#include "llmgw/admission/wait_estimate.hpp"
#include "llmgw/config/gateway_config.hpp"
#include "llmgw/metrics/gateway_metrics.hpp"

namespace boost::asio {
class io_context;
}

namespace llmgw::server::detail {

struct ClientConnection;

class AdmissionGate {
 public:
  using Clock = std::chrono::steady_clock;
  using Priority = admission::Priority;

  AdmissionGate(metrics::NodeAdmissionMetrics& node_metrics, const config::NodeConfig& node,
                const config::AdmissionConfig& admission);
  ~AdmissionGate();
  AdmissionGate(const AdmissionGate&) = delete;
  AdmissionGate& operator=(const AdmissionGate&) = delete;

  // A reload: new caps (a raised cap dispatches waiters at once), aging and reserve.
  void configure(const config::NodeConfig& node, const config::AdmissionConfig& admission);

  // One slot, held until release() or destruction. Move-only.
  class Permit {
   public:
    Permit() = default;
    Permit(AdmissionGate* gate, std::string model, Priority priority) noexcept
        : gate_(gate), model_(std::move(model)), priority_(priority), granted_(Clock::now()) {}
    Permit(Permit&& other) noexcept { *this = std::move(other); }
    Permit& operator=(Permit&& other) noexcept;
    ~Permit() { release(false); }

    // Frees the slot. `completed`: the node's whole answer is in, so the time held is a service
    // time worth learning from.
    void release(bool completed) noexcept;
    bool held() const noexcept { return gate_ != nullptr; }

   private:
    AdmissionGate* gate_ = nullptr;
    std::string model_;
    Priority priority_ = Priority::interactive;
    Clock::time_point granted_{};
  };

  // A slot now if one is free (for `model` and `priority`, under the caps and the reserve), else
  // none. `session`: the request's session (its ring position; InteractiveReserve::kUnkeyed
  // without a key), which an interactive request marks active here.
  Permit try_admit(const std::string& model, Priority priority,
                   std::uint64_t session = admission::InteractiveReserve::kUnkeyed);
  // The lowest class, below batch (the gateway's own preheats, preheat.hpp): a slot only when no
  // client request waits in any class and another slot stays free after it (a cap of 1 takes no
  // preheat), so a client arriving finds room; the caller polls. Never queued.
  Permit try_admit_idle(const std::string& model);

  enum class Outcome { admitted, queue_full, timed_out, client_gone, shutting_down };
  struct Waited {
    Outcome outcome = Outcome::timed_out;
    Permit permit;
    bool queued = false;           // it joined the queue (false: admitted at once or refused)
    Clock::duration waited_for{};  // time in the queue
  };
  // A slot now, or after waiting in the queue of `priority` until `deadline` (at most
  // `max_queue` of that class wait). The client is watched meanwhile (watchdog.hpp): a client that
  // leaves is taken out of the queue at once. Never throws.
  boost::asio::awaitable<Waited> admit(boost::asio::io_context& io, ClientConnection& connection,
                                       const std::atomic<bool>& drain_cut, Priority priority,
                                       std::string model, std::uint64_t session,
                                       std::size_t max_queue, Clock::time_point deadline);

  // What admission decisions read (a consistent view under the mutex).
  struct View {
    std::size_t cap = 0;  // 0: no cap
    std::size_t per_model_cap = 0;
    std::size_t interactive_reserve = 0;  // configured, per active session
    std::size_t active_sessions = 0;      // interactive sessions seen within the window
    std::size_t reserved = 0;             // slots batch leaves free now
    std::size_t in_flight = 0;
    std::size_t batch_in_flight = 0;
    std::array<std::size_t, admission::kPriorityCount> queued{};
    std::size_t ahead = 0;  // ahead of a new request of the priority asked for
    bool room = true;       // a request of the model asked for would be admitted now
    std::optional<double> service_seconds;
    std::optional<double> prefill_seconds_per_token;
    std::optional<double> cache_reuse;
  };
  View view(Priority priority, const std::string& model) const;

  // Whether requests for `model` (canonical) and for other models are admitted or waiting here
  // now: routing by model (catalog.hpp) keeps a node that is working on one model from being
  // handed sessions of another, which would make it swap models (Ollama's max loaded models).
  // Requests without a model (the catalog off) do not count.
  struct ModelActivity {
    bool this_model = false;
    bool other_models = false;
  };
  ModelActivity activity(const std::string& model) const;

  // A final record relayed from this node (prompt_eval_count, prompt_eval_duration); `affinity`:
  // the request was routed to its session's node (its cached share joins the cache reuse).
  void observe_prefill(std::uint64_t prompt_tokens, double prompt_eval_seconds, bool affinity);

 private:
  struct Waiter;

  bool has_room_locked(const std::string& model, Priority priority, Clock::time_point now) const;
  void admit_locked(const std::string& model, Priority priority, std::uint64_t session,
                    Clock::time_point now);
  void release_slot(const std::string& model, Priority priority,
                    std::optional<Clock::duration> held) noexcept;
  // Grants every waiter that fits now; returns them, to be woken once the mutex is released.
  std::vector<std::shared_ptr<Waiter>> dispatch_locked(Clock::time_point now);
  void publish_depth_locked();
  static void count_model(std::unordered_map<std::string, std::size_t>& counts,
                          const std::string& model, bool add) noexcept;
  static void wake(const std::vector<std::shared_ptr<Waiter>>& granted);

  metrics::NodeAdmissionMetrics& metrics_;
  mutable std::mutex mutex_;
  std::size_t cap_;
  std::size_t per_model_cap_;
  std::size_t interactive_reserve_;
  // Sessions expire as time passes, also between two calls that change the gate: mutable, so
  // that const readers see the reserve of their moment.
  mutable admission::InteractiveReserve reserve_;
  std::size_t in_flight_ = 0;
  std::size_t batch_in_flight_ = 0;
  std::unordered_map<std::string, std::size_t> model_in_flight_;
  std::unordered_map<std::string, std::size_t> model_queued_;  // waiting, by model
  admission::AdmissionQueue queue_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Waiter>> waiters_;
  std::uint64_t next_ticket_ = 1;
  admission::NodeTimings timings_;
};

}  // namespace llmgw::server::detail
