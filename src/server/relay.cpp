#include "relay.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "gather_write.hpp"
#include "head_writer.hpp"
#include "request_identity.hpp"
#include "server/as_tuple.hpp"
#include "upstream_request.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using Clock = std::chrono::steady_clock;
using Side = Watchdog::Side;

// The status line and fields the client gets, from the node's response head: hop-by-hop fields
// and those the gateway sets itself are left out, then the gateway's are added.
std::string client_head(const http::response_header<>& upstream, const UpstreamNode& node,
                        const RelayRequest& request, std::string_view request_id, bool chunked,
                        bool keep_alive) {
  static constexpr std::array<std::string_view, 5> kOurs{"X-Gateway-Node", "X-Gateway-Route",
                                                         "X-Gateway-Key-Source", kRequestIdHeader,
                                                         "X-Gateway-Preheated"};
  std::string head;
  head.reserve(512);
  append_status_line(head, upstream.result_int());
  for (const auto& field : upstream) {
    const auto name = field.name_string();
    // The gateway's own names are none Beast knows: only unknown fields are compared.
    if (is_hop_by_hop(field.name()) ||
        (field.name() == http::field::unknown &&
         std::any_of(kOurs.begin(), kOurs.end(),
                     [&](std::string_view ours) { return beast::iequals(name, ours); }))) {
      continue;
    }
    append_field(head, name, field.value());
  }
  append_field(head, "X-Gateway-Node", node.id);
  append_field(head, "X-Gateway-Route", routing::to_string(request.route));
  append_field(head, "X-Gateway-Key-Source", request.key_source);
  if (chunked) {
    append_field(head, "Transfer-Encoding", "chunked");  // upstream chunked or close-delimited
  }
  if (!keep_alive) {
    append_field(head, "Connection", "close");
  } else if (!request.client_accepts_chunks) {
    append_field(head, "Connection", "keep-alive");  // HTTP/1.0 closes unless told otherwise
  }
  append_field(head, kRequestIdHeader, request_id);
  if (request.preheated) {
    append_field(head, "X-Gateway-Preheated", "true");
  }
  end_head(head);
  return head;
}

// What one write to the client carries: the head while it has not gone out, a piece of the body
// (framed as a chunk when the answer is chunked), and the last chunk at the end. One gather write.
class ClientPieces {
 public:
  ClientPieces(std::string head, bool chunked) : head_(std::move(head)), chunked_(chunked) {}

  std::span<asio::const_buffer> gather(std::string_view data, bool last) {
    std::size_t n = 0;
    if (!head_sent_) {
      buffers_[n++] = asio::buffer(head_);
    }
    if (!data.empty()) {
      if (chunked_) {
        buffers_[n++] = asio::buffer(size_line_.data(), chunk_size_line(data.size(), size_line_));
      }
      buffers_[n++] = asio::buffer(data);
      if (chunked_) {
        buffers_[n++] = asio::buffer(kChunkEnd);
      }
    }
    if (last && chunked_) {
      buffers_[n++] = asio::buffer(kLastChunk);
    }
    head_sent_ = true;
    return {buffers_.data(), n};
  }
  bool head_sent() const noexcept { return head_sent_; }

 private:
  std::string head_;
  bool chunked_;
  bool head_sent_ = false;
  std::array<char, 18> size_line_{};
  std::array<asio::const_buffer, 5> buffers_{};
};

// Parses what `input` holds into the rest of the body buffer the parser is writing to, without
// I/O; sets `broken` on a malformed body. Beast's read_some stops at the end of each chunk, and a
// node that streams writes one chunk per record: the records that arrived in one read then leave
// in one write, not one write each (bench/RESULTS.md §12.7).
void parse_rest(http::response_parser<http::buffer_body>& parser, beast::flat_buffer& input,
                bool& broken) {
  while (input.size() > 0 && !parser.is_done() && parser.get().body().size > 0) {
    beast::error_code ec;
    const std::size_t used = parser.put(input.data(), ec);
    input.consume(used);
    if (ec == http::error::need_more || ec == http::error::need_buffer) {
      break;
    }
    if (ec) {
      broken = true;
      break;
    }
    if (used == 0) {
      break;
    }
  }
}

// Parses the body bytes already in `input` (they came with the head) into `out`, without I/O.
// Returns how many body bytes `out` received; sets `broken` on a malformed body.
std::size_t parse_buffered(http::response_parser<http::buffer_body>& parser,
                           beast::flat_buffer& input, std::span<char> out, bool& broken) {
  parser.get().body().data = out.data();
  parser.get().body().size = out.size();
  parse_rest(parser, input, broken);
  return out.size() - parser.get().body().size;
}

// The body window and the node's read buffer of one relay, sized to the stream. Both start at
// the pooled size (RelayBuffers::kReadBytes, 2 KiB) and double, up to kMaxReadBytes, while reads
// come back (nearly) full: a node with a backlog (records written faster than they are relayed, a
// long answer) is then read in pieces of up to 64 KiB, one write each to the client, where 2 KiB
// reads cost a read and a write per 2 KiB (bench/RESULTS.md §12.3). A read that brings less than
// a quarter of the pooled size (a stream paced by its generation) gives the grown buffers back.
// Such a paced stream also hands its pooled buffers back to the worker while it waits for its
// next record (release/reacquire around a wait for readability), so 5,000 streams waiting for
// tokens hold no relay buffers at all (§12.6); the price is one epoll_ctl per record of a paced
// stream, as Asio re-arms the descriptor for a wait.
class ReadWindow {
 public:
  // Beast's largest read (read_size's bound in http::async_read_some).
  static constexpr std::size_t kMaxReadBytes = 64 * 1024;

  ReadWindow(RelayBufferPool& pool, std::unique_ptr<RelayBuffers>& buffers)
      : pool_(pool), buffers_(buffers) {}
  ~ReadWindow() {
    if (!buffers_) {
      buffers_ = pool_.take();  // the owner gives them back to the pool
    } else if (grown_) {
      shrink_input();  // the pooled read buffer goes back at its pooled size
    }
  }
  ReadWindow(const ReadWindow&) = delete;
  ReadWindow& operator=(const ReadWindow&) = delete;

  beast::flat_buffer& input() { return buffers_->upstream_input; }
  std::span<char> window() const noexcept {
    return grown_ ? std::span<char>{grown_.get(), grown_size_} : std::span<char>{buffers_->body};
  }

  // Sizes the next read from the last one, which brought `got` body bytes (relayed already).
  void adapt(std::size_t got) {
    paced_ = false;
    if (got >= window().size() / 4 * 3 && window().size() < kMaxReadBytes) {
      grown_size_ = window().size() * 2;
      grown_ = std::make_unique_for_overwrite<char[]>(grown_size_);
      input().reserve(grown_size_);
    } else if (got < RelayBuffers::kReadBytes / 4) {
      if (grown_) {
        grown_.reset();
        shrink_input();
      }
      paced_ = input().size() <= kCarriedBytes;
    }
  }
  // The last read brought little and nothing waits in the read buffer: the buffers may go back
  // to the worker while the stream waits for the node (release, then reacquire before the read).
  bool paced() const noexcept { return paced_; }
  // What is left in the read buffer (at most a chunk's closing CRLF, which Beast parses with the
  // next chunk's size line) is carried across.
  void release() {
    auto& input = this->input();
    carried_size_ = input.size();
    asio::buffer_copy(asio::buffer(carried_), input.data());
    pool_.put(std::move(buffers_));
  }
  void reacquire() {
    buffers_ = pool_.take();
    auto& input = this->input();
    input.commit(asio::buffer_copy(input.prepare(carried_size_),
                                   asio::buffer(carried_.data(), carried_size_)));
  }

 private:
  void shrink_input() {
    auto& input = this->input();
    if (input.capacity() > RelayBuffers::kReadBytes && input.size() <= RelayBuffers::kReadBytes) {
      input.shrink_to_fit();
      input.reserve(RelayBuffers::kReadBytes);
    }
  }

  RelayBufferPool& pool_;
  std::unique_ptr<RelayBuffers>& buffers_;
  std::unique_ptr<char[]> grown_;
  std::size_t grown_size_ = 0;
  bool paced_ = false;
  // A chunk's closing CRLF: nothing shorter than 3 bytes completes a chunk or the last one
  // ("0\r\n\r\n" is 5), so a leftover this short never holds something to relay while the
  // node, having sent everything, stays silent.
  static constexpr std::size_t kCarriedBytes = 2;
  std::array<char, kCarriedBytes> carried_{};
  std::size_t carried_size_ = 0;
};

std::string break_message(RelayEnd end, const UpstreamNode& node,
                          const config::GatewayConfig& config) {
  switch (end) {
    case RelayEnd::total_timeout:
      return "the request took longer than timeouts.total_ms (" +
             std::to_string(config.timeouts.total.count()) + " ms); node " + node.id;
    case RelayEnd::shutdown:
      return "the gateway is shutting down; the stream from node " + node.id + " was cut";
    default:
      return "the upstream node " + node.id + " ended the stream unexpectedly";
  }
}

}  // namespace

std::string stream_error_record(std::string_view content_type, const std::string& message) {
  if (content_type.find("text/event-stream") != std::string_view::npos) {
    const nlohmann::json openai{{"error", {{"message", message}, {"type", "upstream_error"}}}};
    return "data: " + openai.dump() + "\n\n";
  }
  return nlohmann::json{{"error", message}}.dump() + "\n";
}

asio::awaitable<RelayResult> relay(Worker& worker, ClientConnection& connection, UpstreamNode& node,
                                   Exchange& exchange, std::unique_ptr<RelayBuffers>& buffers,
                                   const RelayRequest& request) {
  const auto& config = *request.config;
  Watchdog& watchdog = *connection.watchdog;
  Stream& client = *connection.client;
  Stream& upstream = *exchange.upstream;
  auto& parser = *exchange.parser;
  RelayResult result;
  result.status = parser.get().result_int();

  const bool may_have_body =
      !request.head_request && result.status >= 200 && result.status != 204 && result.status != 304;
  const bool length_known = !may_have_body || parser.content_length().has_value();
  const bool chunked = !length_known && request.client_accepts_chunks;
  const bool close_delimited = !length_known && !chunked;  // an HTTP/1.0 client
  const bool keep_alive = request.client_keep_alive && !close_delimited &&
                          !worker.shared.draining.load(std::memory_order_relaxed);
  ClientPieces pieces(
      client_head(parser.get(), node, request, connection.request_id, chunked, keep_alive),
      chunked);

  bool upstream_complete = parser.is_done();
  bool broken = false;
  bool client_gone = false;
  bool completion_signalled = false;
  ReadWindow window(worker.relay_buffers, buffers);
  // Body bytes that came with the head go out with it: a short response leaves in one write.
  std::size_t got = 0;
  if (!upstream_complete && window.input().size() > 0) {
    got = parse_buffered(parser, window.input(), window.window(), broken);
    upstream_complete = !broken && parser.is_done();
  }
  for (;;) {
    if (got > 0) {
      if (!result.first_byte_seen) {
        result.first_byte_seen = true;
        result.time_to_first_byte = Clock::now() - request.started;
      }
      if (request.scan_usage) {
        result.usage_scanner.feed(std::string_view{window.window().data(), got});
      }
    }
    if (upstream_complete && !completion_signalled && request.on_upstream_complete) {
      completion_signalled = true;
      request.on_upstream_complete();
    }
    // One write per piece: the head goes with the first one, the last chunk with the last one.
    // A stream whose first token is not there yet gets its head at once, alone.
    if (got > 0 || !pieces.head_sent() || (upstream_complete && chunked)) {
      auto out = pieces.gather({window.window().data(), got}, upstream_complete);
      watchdog.arm(Side::client, config.timeouts.idle);
      beast::error_code write_error;
      if (!write_at_once(client, out, write_error)) {
        write_error = co_await write_rest(client, out);
      }
      client_gone = static_cast<bool>(write_error);
      if (!client_gone) {
        result.bytes += got;
      }
    }
    if (client_gone || upstream_complete || broken) {
      break;
    }
    window.adapt(got);
    watchdog.arm(Side::upstream, config.timeouts.idle);
    // Not over TLS: OpenSSL may hold decrypted bytes while the socket shows nothing to read.
    if (window.paced() && !upstream.is_tls()) {
      window.release();
      // Its outcome shows in the read below (a closed or timed-out socket fails it at once).
      co_await upstream.socket().async_wait(tcp::socket::wait_read, kAsTuple);
      window.reacquire();
    }
    const std::span<char> next = window.window();
    parser.get().body().data = next.data();
    parser.get().body().size = next.size();
    // read_some, not read: read would wait until the buffer is full, holding tokens back.
    auto [read_error, read] =
        co_await http::async_read_some(upstream, window.input(), parser, kAsTuple);
    if (read_error && read_error != http::error::need_buffer) {
      broken = true;  // what was read still goes to the client first
    } else {
      parse_rest(parser, window.input(), broken);
      upstream_complete = !broken && parser.is_done();
    }
    got = next.size() - parser.get().body().size;
    if (config.timeouts.total.count() > 0 &&
        Clock::now() - request.started > config.timeouts.total) {
      result.end = RelayEnd::total_timeout;
      broken = true;
      upstream_complete = false;
    }
  }
  connection.upstream = nullptr;
  result.usage_scanner.finish();

  if (client_gone) {
    result.end = RelayEnd::client_gone;
    co_return result;
  }
  if (!broken) {
    result.end = RelayEnd::complete;
    result.client_reusable = keep_alive;
    result.upstream_reusable = parser.keep_alive();
    co_return result;
  }
  if (result.end != RelayEnd::total_timeout) {
    result.end = worker.shared.drain_cut.load(std::memory_order_relaxed)
                     ? RelayEnd::shutdown
                     : RelayEnd::upstream_broken;
  }
  if (chunked || close_delimited) {
    // The error record, then (chunked) the terminal chunk: the client's parser sees a complete
    // message and its connection stays usable.
    auto record = stream_error_record(parser.get()[http::field::content_type],
                                      break_message(result.end, node, config));
    auto out = pieces.gather(record, true);
    watchdog.arm(Side::client, config.timeouts.idle);
    beast::error_code write_error;
    if (!write_at_once(client, out, write_error)) {
      write_error = co_await write_rest(client, out);
    }
    result.client_reusable = !write_error && chunked && keep_alive;
  }
  co_return result;
}

}  // namespace llmgw::server::detail
