// The account step of the proxy path (proxy_account.hpp).

#include "proxy_account.hpp"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "gateway_state.hpp"

namespace llmgw::server::detail {
namespace {

using Clock = std::chrono::steady_clock;
using metrics::UpstreamError;

double as_seconds(Clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

void count_error(UpstreamNode& node, UpstreamError kind) {
  node.metrics.errors[static_cast<std::size_t>(kind)]->Increment();
}

// account, for an attempt that produced no response to relay: the error metric, the node's
// health (only for what is the node's fault), and the message the client gets if no other node
// answers.
}  // namespace

std::string account_failed_attempt(const config::GatewayConfig& config, UpstreamNode& node,
                                   AttemptOutcome outcome, std::chrono::milliseconds time_allowed,
                                   int status, const std::string& detail) {
  const auto policy = outlier_policy(config.health);
  std::string message;
  switch (outcome) {
    case AttemptOutcome::connect_failed:
      count_error(node, UpstreamError::connect);
      message = "could not connect to node " + node.id + " (" + node.authority + ")";
      if (!detail.empty()) {
        message += ": " + detail;  // a TLS failure: which check failed
      }
      break;
    case AttemptOutcome::reset:
      count_error(node, UpstreamError::connect);
      message = "node " + node.id + " closed the connection before answering";
      break;
    case AttemptOutcome::timed_out:
      count_error(node, UpstreamError::timeout);
      message = "node " + node.id + " did not answer within " +
                std::to_string(time_allowed.count()) + " ms";
      break;
    case AttemptOutcome::answered:  // with a 5xx, and another node left to try
      count_error(node, UpstreamError::status_5xx);
      message = "node " + node.id + " answered " + std::to_string(status);
      break;
    case AttemptOutcome::client_gone:
      count_error(node, UpstreamError::client_disconnect);
      return "the client closed the connection";
    case AttemptOutcome::no_descriptors:
      return "the gateway is out of file descriptors; retry shortly";
    case AttemptOutcome::shutting_down:
      return "the gateway is shutting down";
  }
  node.record_failure(NodeHealth::Source::traffic, policy, message);
  return message;
}

ProxyResult account_relayed(Worker& worker, const config::GatewayConfig& config, UpstreamNode& node,
                            std::size_t key_slot, routing::RouteKind route, bool generates,
                            admission::Priority priority, Exchange& exchange, RelayResult& relayed,
                            Clock::time_point started) {
  const auto policy = outlier_policy(config.health);
  switch (relayed.end) {
    case RelayEnd::complete:
      if (relayed.upstream_reusable) {
        worker.pool.put(node.pool_key, std::move(*exchange.upstream),
                        config.limits.max_idle_upstream_per_node, Clock::now());
      }
      break;
    case RelayEnd::client_gone:
      // Closing the upstream connection cancels the generation on the node (frees its slot).
      count_error(node, UpstreamError::client_disconnect);
      break;
    case RelayEnd::upstream_broken:
      count_error(node, UpstreamError::broken_stream);
      node.record_failure(NodeHealth::Source::traffic, policy, "a response stream broke mid-way");
      break;
    case RelayEnd::total_timeout:
      count_error(node, UpstreamError::timeout);
      break;
    case RelayEnd::shutdown:
      break;
  }
  if (relayed.status >= 500) {
    node.record_failure(NodeHealth::Source::traffic, policy,
                        "answered " + std::to_string(relayed.status));
  } else if (relayed.end == RelayEnd::complete || relayed.end == RelayEnd::client_gone) {
    node.record_success(NodeHealth::Source::traffic, policy);
  }

  const Usage& usage = relayed.usage_scanner.usage();
  if (usage.seen) {
    node.metrics.prompt_tokens->Increment(static_cast<double>(usage.prompt_tokens));
    node.metrics.completion_tokens->Increment(static_cast<double>(usage.completion_tokens));
    node.metrics.prompt_eval_seconds->Increment(usage.prompt_eval_seconds);
    node.admission.observe_prefill(
        usage.prompt_tokens, usage.prompt_eval_seconds,
        route == routing::RouteKind::affinity && priority == admission::Priority::interactive);
  }
  const auto duration = Clock::now() - started;
  const auto route_index = static_cast<std::size_t>(route);
  // Metadata calls (GET, HEAD: /api/tags, /api/ps, /v1/models) answer at once from any node; in
  // the first-token histogram they would hide a prefill regression behind fast answers.
  if (generates) {
    if (relayed.first_byte_seen) {
      node.metrics.time_to_first_byte[route_index]->Observe(as_seconds(relayed.time_to_first_byte));
    } else if (relayed.end == RelayEnd::complete) {
      node.metrics.time_to_first_byte[route_index]->Observe(as_seconds(duration));  // empty body
    }
  }
  node.metrics.bytes_relayed->Increment(static_cast<double>(relayed.bytes));
  node.metrics.request_duration[route_index]->Observe(as_seconds(duration));
  worker.shared.metrics.count_request(node.metrics, key_slot, route, relayed.status);
  return ProxyResult{relayed.status, relayed.client_reusable, node.id, routing::to_string(route),
                     relayed.bytes};
}

}  // namespace llmgw::server::detail
