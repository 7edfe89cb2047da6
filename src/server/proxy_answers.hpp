#pragma once

// Internal: the answers of the proxy path that relay no node's response as it arrives: errors the
// gateway makes itself (proxy.hpp's json_error and send_local_answer), and a node's short error
// body read whole to judge it, then passed on.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "proxy.hpp"
#include "upstream_attempt.hpp"

namespace llmgw::server::detail {

// {"error": message} with `status` (and Retry-After when given), sent with send_local_answer.
asio::awaitable<ProxyResult> answer_locally(Worker& worker, ClientConnection& connection,
                                            std::chrono::milliseconds idle_timeout, int status,
                                            const std::string& message, bool keep_alive,
                                            std::string_view retry_after = {});

// A 404 from a node for a request that names a model: its body, when it is short enough to hold
// (an error body: Ollama sends its length), read whole so that the proxy can tell "model not
// found" from any other 404. nullopt: the body is not read (the response is relayed as usual), or
// the node's connection broke while reading it.
struct ShortBody {
  std::string text;
  std::string content_type;
};
asio::awaitable<std::optional<ShortBody>> read_short_body(ClientConnection& connection,
                                                          Exchange& exchange, RelayBuffers& buffers,
                                                          std::chrono::milliseconds idle);

// The node's short answer, passed on by the gateway (its body was read to judge it).
asio::awaitable<ProxyResult> answer_with_body(Worker& worker, ClientConnection& connection,
                                              std::chrono::milliseconds idle_timeout, int status,
                                              ShortBody body, bool keep_alive,
                                              const UpstreamNode& node);

}  // namespace llmgw::server::detail
