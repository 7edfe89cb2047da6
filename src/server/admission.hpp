#pragma once

// Internal: admission on the proxy path (proxy.hpp: plan -> admit -> attempt -> relay -> account;
// docs/DESIGN.md §2.2). Before a generating request (not GET or HEAD) is sent to a node it takes
// one of the node's slots (admission_gate.hpp):
//   - the plan's first candidate (the session's node, or the round-robin pick) when it has room;
//   - else, when another candidate has room: a keyed request with admission.warm_wait: estimate
//     compares the expected wait on its node with a cold prefill of its history on the node with
//     room (llmgw/admission/wait_estimate.hpp) and waits or spills; otherwise it spills at once
//     (a keyed request on the plain ring, routing.balance_factor 0, never spills: it waits);
//   - else it waits in the first candidate's queue whose class has space (its own node first);
//     with every queue full, 429 queue_full; past its class's max_wait, 429 max_wait.
// A retry on the next candidate takes a slot there the same way, without the choice.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "admission_gate.hpp"
#include "gateway_state.hpp"
#include "proxy.hpp"

namespace llmgw::server::detail {

struct AdmissionRequest {
  admission::Priority priority = admission::Priority::interactive;
  std::string model;           // canonical; empty when not known (no per-model cap then)
  std::size_t body_bytes = 0;  // for the history estimate
  bool keyed = false;          // a session key chose the first candidate (warm wait applies)
  std::chrono::steady_clock::time_point deadline;  // timeouts.first_byte_total from arrival
  // The session's ring position, for the interactive reserve; kUnkeyed without a key.
  std::uint64_t session = admission::InteractiveReserve::kUnkeyed;
};

struct Admission {
  enum class Outcome { admitted, rejected, client_gone, shutting_down };
  Outcome outcome = Outcome::rejected;
  std::size_t candidate = 0;  // admitted: index into the plan
  bool spilled = false;       // admitted on another candidate than the first, for room
  AdmissionGate::Permit permit;
  // rejected (429):
  metrics::AdmissionReject reason = metrics::AdmissionReject::queue_full;
  std::string message;
  std::string limit;  // the configuration key of the limit reached
  std::uint64_t retry_after_seconds = 1;
  std::string node;  // whose queue
};

// The first candidate's slot, by the rule above.
asio::awaitable<Admission> admit_first(Worker& worker, ClientConnection& connection,
                                       const Snapshot& snapshot, const routing::RoutePlan& plan,
                                       const AdmissionRequest& request);

// A slot on plan candidate `candidate` (a retry), waiting in its queue if need be.
asio::awaitable<Admission> admit_on(Worker& worker, ClientConnection& connection,
                                    const Snapshot& snapshot, const routing::RoutePlan& plan,
                                    std::size_t candidate, const AdmissionRequest& request);

// The 429 of a rejected admission: Retry-After, X-Gateway-Reject-Reason, X-Gateway-Node, and
// {"error", "reason", "class", "limit", "retry_after_seconds", "node"}.
asio::awaitable<ProxyResult> answer_rejected(Worker& worker, ClientConnection& connection,
                                             std::chrono::milliseconds idle_timeout,
                                             const Admission& admission,
                                             admission::Priority priority, bool keep_alive);

// A refusal the gateway makes before any queue (400 unknown class, 503 no eligible node): a JSON
// error with X-Gateway-Reject-Reason.
asio::awaitable<ProxyResult> answer_refused(Worker& worker, ClientConnection& connection,
                                            std::chrono::milliseconds idle_timeout, int status,
                                            std::string_view reason, const std::string& message,
                                            bool keep_alive, std::string_view retry_after = {});

}  // namespace llmgw::server::detail
