// POST /api/pull on the fleet (fleet_endpoints.hpp): the pull goes to every addressed node at once.
//
// Streamed (the default, as in Ollama): one NDJSON stream to the client. Each node's progress
// records are relayed as they arrive, each with "node" added; a node's own "success" is relayed
// as {"status":"node a: success"} so that clients which stop at the first "success" (ollama-js,
// Ollama's CLI) read on. Once every node has finished: one {"error":"node b: ...","node":"b"}
// record per failed node, or {"status":"success"} when every node succeeded. The error records
// come last on purpose: clients stop reading at the first error record and close the connection,
// which cancels the pulls still running on the other nodes. The response head is written with
// the first relayed record; when every node fails before sending one, the answer is a plain
// error (its status from failure_status), as Ollama answers a pull that fails before progress.
//
// With "stream": false: one JSON answer, 200 {"status":"success","nodes":[...]} or the failure
// status with {"error":"pull failed on node b: ...","nodes":[...]}.
//
// A client that leaves (seen by watch_client, or by a failed write) cancels every node's pull:
// their connections are closed, which stops a pull on Ollama.

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>

#include "fleet_endpoints.hpp"
#include "llmgw/net/http_types.hpp"
#include "request_identity.hpp"
#include "server/as_tuple.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr std::size_t kPullChannelCapacity = 16;

// The merged stream as the client receives it: the head with the first record, then one chunk
// per record (raw bytes until close for an HTTP/1.0 client).
class MergedStream {
 public:
  MergedStream(FleetRequest& fleet, std::shared_ptr<FanOut> state)
      : fleet_(fleet), state_(std::move(state)), chunked_(fleet.request.version() >= 11) {}

  bool started() const noexcept { return started_; }
  bool broken() const noexcept { return broken_; }
  std::uint64_t bytes() const noexcept { return bytes_; }
  bool keep_alive() const noexcept { return chunked_ && fleet_.keep_alive && !broken_; }

  // Writes `line` (with its newline); on failure the client is gone and every pull is cancelled.
  asio::awaitable<void> write(std::string line) {
    if (broken_) {
      co_return;
    }
    auto& client = *fleet_.connection.client;
    stop_watching(client, *state_);
    fleet_.connection.watchdog->arm(Watchdog::Side::client,
                                    fleet_.snapshot->config().timeouts.idle);
    beast::error_code ec;
    if (!started_) {
      started_ = true;
      ec = co_await write_head();
    }
    if (!ec && chunked_) {
      // Named, not a temporary in the co_await expression: GCC 12 lost the temporary's buffers.
      const auto chunk = http::make_chunk(asio::buffer(line));
      std::tie(ec, std::ignore) = co_await asio::async_write(client, chunk, kAsTuple);
    } else if (!ec) {
      std::tie(ec, std::ignore) = co_await asio::async_write(client, asio::buffer(line), kAsTuple);
    }
    fleet_.connection.watchdog->disarm();
    if (ec) {
      give_up();
      co_return;
    }
    bytes_ += line.size();
    if (!state_->client_gone) {
      watch_client(client, state_);
    }
  }

  asio::awaitable<void> finish() {
    auto& client = *fleet_.connection.client;
    stop_watching(client, *state_);
    if (broken_ || !chunked_) {
      co_return;
    }
    fleet_.connection.watchdog->arm(Watchdog::Side::client,
                                    fleet_.snapshot->config().timeouts.idle);
    const auto last = http::make_chunk_last();
    auto [ec, n] = co_await asio::async_write(client, last, kAsTuple);
    if (ec) {
      broken_ = true;
    }
  }

 private:
  asio::awaitable<beast::error_code> write_head() {
    http::response<http::empty_body> head{http::status::ok, 11};
    head.set(http::field::content_type, "application/x-ndjson");
    head.set(http::field::server, "llmgw");
    head.set("X-Gateway-Route", "fleet");
    head.set("X-Gateway-Nodes", join_names(target_names(fleet_)));
    head.set(kRequestIdHeader, fleet_.connection.request_id);
    head.keep_alive(keep_alive());
    if (chunked_) {
      head.chunked(true);
    }
    http::response_serializer<http::empty_body> serializer{head};
    auto [ec, n] =
        co_await http::async_write_header(*fleet_.connection.client, serializer, kAsTuple);
    co_return ec;
  }

  void give_up() {
    broken_ = true;
    state_->client_gone = true;
    state_->cancel.cancel_all();
  }

  FleetRequest& fleet_;
  std::shared_ptr<FanOut> state_;
  bool chunked_;
  bool started_ = false;
  bool broken_ = false;
  std::uint64_t bytes_ = 0;
};

// What one node's pull came to.
struct NodePull {
  bool success = false;  // its own "success" record (or answer) arrived
  std::string error;     // its error record, or why it failed
};

// The outcome of every node: its records' verdict, else what its answer says.
std::vector<NodePull> settle(std::vector<NodePull> pulls, const std::vector<NodeAnswer>& answers,
                             bool streamed) {
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& answer = answers[i];
    auto& pull = pulls[i];
    if (!pull.error.empty()) {
      pull.success = false;
    } else if (!answer.answered() || answer.status != 200) {
      pull.success = false;
      pull.error = answer.problem();
    } else if (!streamed) {
      const auto body = json::parse(answer.body, nullptr, false);
      pull.success = body.is_object() && body.value("status", std::string{}) == "success";
      if (!pull.success) {
        pull.error = "answered without \"status\": \"success\"";
      }
    } else if (!pull.success) {
      pull.error = "the progress stream ended before \"success\"";
    }
  }
  return pulls;
}

json node_results(const FleetRequest& fleet, const std::vector<NodePull>& pulls) {
  json nodes = json::array();
  for (std::size_t i = 0; i < pulls.size(); ++i) {
    const auto& name = fleet.targets[i]->id;
    nodes.push_back(pulls[i].success ? json{{"node", name}, {"status", "success"}}
                                     : json{{"node", name}, {"error", pulls[i].error}});
  }
  return nodes;
}

// The one JSON answer when no record reached the client (stream: false, or every node failed
// before its first record). Not a coroutine: GCC 12 cannot keep an initializer list alive across
// co_await.
http::response<http::string_body> pulled_answer(const FleetRequest& fleet,
                                                const std::vector<NodePull>& pulls,
                                                const std::vector<NodeAnswer>& answers) {
  std::vector<const NodeAnswer*> failed;
  std::string problems;
  for (std::size_t i = 0; i < pulls.size(); ++i) {
    if (!pulls[i].success) {
      failed.push_back(&answers[i]);
      problems +=
          (problems.empty() ? "" : "; ") + ("node " + answers[i].node + ": " + pulls[i].error);
    }
  }
  if (failed.empty()) {
    return fleet_json(200, json{{"status", "success"}, {"nodes", node_results(fleet, pulls)}},
                      fleet.keep_alive);
  }
  return fleet_json(
      failure_status(failed),
      json{{"error", "pull failed on " + problems}, {"nodes", node_results(fleet, pulls)}},
      fleet.keep_alive);
}

// The merged stream's last records: one error record per failed node, else the fleet's success.
std::string closing_records(const FleetRequest& fleet, const std::vector<NodePull>& pulls) {
  std::string records;
  for (std::size_t i = 0; i < pulls.size(); ++i) {
    if (!pulls[i].success) {
      const auto& name = fleet.targets[i]->id;
      records += json{{"error", "node " + name + ": " + pulls[i].error}, {"node", name}}.dump(
                     -1, ' ', false, json::error_handler_t::replace) +
                 "\n";
    }
  }
  return records.empty() ? json{{"status", "success"}}.dump() + "\n" : records;
}

struct PullBody {
  std::string model;  // empty: refuse
  bool streamed = true;
};

PullBody parse_pull_body(const std::string& text) {
  PullBody parsed;
  const auto body = json::parse(text, nullptr, false);
  if (!body.is_object()) {
    return parsed;
  }
  for (const char* key : {"model", "name"}) {  // Ollama reads either
    if (parsed.model.empty() && body.contains(key) && body[key].is_string()) {
      parsed.model = body[key].get<std::string>();
    }
  }
  const auto stream = body.find("stream");
  parsed.streamed = stream == body.end() || !stream->is_boolean() || stream->get<bool>();
  return parsed;
}

}  // namespace

asio::awaitable<ProxyResult> pull_on_fleet(FleetRequest& fleet) {
  const PullBody body = parse_pull_body(fleet.request.body());
  if (body.model.empty()) {
    co_return co_await send_fleet_response(
        fleet, fleet_error(400, "the request body must be a JSON object with \"model\"",
                           fleet.keep_alive));
  }
  const bool streamed = body.streamed;
  auto state = std::make_shared<FanOut>(co_await asio::this_coro::executor, kPullChannelCapacity);
  MergedStream stream(fleet, state);
  std::vector<NodePull> pulls(fleet.targets.size());
  const auto limits = request_limits(fleet);
  const NodeTask task = [&](std::size_t index, const RecordSink& sink) {
    return call_node(*fleet.targets[index], http::verb::post, "/api/pull", fleet.request.body(),
                     std::string{fleet.request[http::field::authorization]}, limits, state->cancel,
                     streamed ? sink : RecordSink{});
  };
  const RecordHandler on_record = [&](std::size_t index,
                                      std::string record) -> asio::awaitable<void> {
    auto relayed = relay_pull_record(record, fleet.targets[index]->id);
    if (!relayed.error.empty()) {
      pulls[index].error = std::move(relayed.error);
    } else {
      pulls[index].success = pulls[index].success || relayed.success;
      co_await stream.write(std::move(relayed.line));
    }
  };
  watch_client(*fleet.connection.client, state);
  const auto answers = co_await fan_out(state, fleet.targets.size(), task, on_record);
  on_fleet_models_changed(fleet.worker.shared, target_names(fleet));
  pulls = settle(std::move(pulls), answers, streamed);
  for (std::size_t i = 0; i < pulls.size(); ++i) {
    if (!pulls[i].success) {
      spdlog::warn("fleet pull of {} failed on node {}: {}", body.model, fleet.targets[i]->id,
                   pulls[i].error);
    }
  }
  if (state->client_gone) {
    stop_watching(*fleet.connection.client, *state);
    co_return ProxyResult{499, false, {}, "fleet", stream.bytes()};
  }
  if (!stream.started()) {
    stop_watching(*fleet.connection.client, *state);
    co_return co_await send_fleet_response(fleet, pulled_answer(fleet, pulls, answers));
  }
  co_await stream.write(closing_records(fleet, pulls));
  co_await stream.finish();
  fleet.worker.shared.metrics.count_unrouted(200, fleet.connection.key_slot);
  co_return ProxyResult{200, stream.keep_alive(), {}, "fleet", stream.bytes()};
}

}  // namespace llmgw::server::detail
