// Answers the proxy path gives without relaying a node's response (proxy_answers.hpp).

#include "proxy_answers.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "request_identity.hpp"
#include "server/as_tuple.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using Side = Watchdog::Side;

}  // namespace

asio::awaitable<ProxyResult> send_local_answer(Worker& worker, ClientConnection& connection,
                                               std::chrono::milliseconds idle_timeout,
                                               http::response<http::string_body> response,
                                               std::string node) {
  response.set(kRequestIdHeader, connection.request_id);
  const int status = static_cast<int>(response.result_int());
  worker.shared.metrics.count_unrouted(status, connection.key_slot);
  connection.watchdog->arm(Side::client, idle_timeout);
  auto [ec, n] = co_await http::async_write(*connection.client, response, kAsTuple);
  co_return ProxyResult{status, !ec && response.keep_alive(), std::move(node), "none",
                        response.body().size()};
}

http::response<http::string_body> json_error(int status, const std::string& message,
                                             bool keep_alive) {
  http::response<http::string_body> response;
  response.version(11);
  response.result(static_cast<unsigned>(status));
  response.set(http::field::content_type, "application/json");
  response.set(http::field::server, "llmgw");
  response.body() = nlohmann::json{{"error", message}}.dump() + "\n";
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

asio::awaitable<ProxyResult> answer_locally(Worker& worker, ClientConnection& connection,
                                            std::chrono::milliseconds idle_timeout, int status,
                                            const std::string& message, bool keep_alive,
                                            std::string_view retry_after) {
  auto response = json_error(status, message, keep_alive);
  if (!retry_after.empty()) {
    response.set(http::field::retry_after, retry_after);
  }
  co_return co_await send_local_answer(worker, connection, idle_timeout, std::move(response));
}

asio::awaitable<std::optional<ShortBody>> read_short_body(ClientConnection& connection,
                                                          Exchange& exchange, RelayBuffers& buffers,
                                                          std::chrono::milliseconds idle) {
  auto& parser = *exchange.parser;
  const auto length = parser.content_length();
  if (!length || *length > RelayBuffers::kShortBodyBytes) {
    co_return std::nullopt;
  }
  ShortBody body;
  body.content_type = std::string{parser.get()[http::field::content_type]};
  while (!parser.is_done()) {
    parser.get().body().data = buffers.body.data();
    parser.get().body().size = buffers.body.size();
    connection.watchdog->arm(Side::upstream, idle);
    auto [ec, n] = co_await http::async_read_some(*exchange.upstream, buffers.upstream_input,
                                                  parser, kAsTuple);
    body.text.append(buffers.body.data(), buffers.body.size() - parser.get().body().size);
    if (ec && ec != http::error::need_buffer) {
      co_return std::nullopt;
    }
  }
  co_return body;
}

asio::awaitable<ProxyResult> answer_with_body(Worker& worker, ClientConnection& connection,
                                              std::chrono::milliseconds idle_timeout, int status,
                                              ShortBody body, bool keep_alive,
                                              const UpstreamNode& node) {
  http::response<http::string_body> response;
  response.version(11);
  response.result(static_cast<unsigned>(status));
  response.set(http::field::content_type,
               body.content_type.empty() ? "application/json" : body.content_type);
  response.set(http::field::server, "llmgw");
  response.set("X-Gateway-Node", node.id);
  response.body() = std::move(body.text);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  co_return co_await send_local_answer(worker, connection, idle_timeout, std::move(response),
                                       node.id);
}

}  // namespace llmgw::server::detail
