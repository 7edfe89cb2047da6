#pragma once

// The last prompt of each live session, for cache preheating (docs/DESIGN.md §2.4).
//
// When a session must move to another node for a planned reason (its node drains or leaves, a
// node joins and now owns it), its next turn would pay a cold prefill of its whole history there.
// The next turn starts with what the last one sent, so the gateway keeps the body of each
// session's last successful generation request and sends it to the new node ahead of the turn
// (server/preheat.hpp). This store holds those bodies:
//
// - Keyed by the session's ring position (routing::ring_position of its key), like the session
//   table: a long session id costs nothing here.
// - Only the request body and its path are kept (the messages or prompt, the model, the options
//   such as num_ctx that shape the cache), never a header: an Authorization or API key sent by
//   the client is not stored. Bodies are never logged.
// - Bounded by `max_bytes` over every entry (the body, the path and node name, and a fixed
//   overhead per entry): the least recently used entry goes first. A body larger than the whole
//   budget is not kept (and the session's older entry is dropped: it is stale).
// - An entry ends when its session has been idle `idle_timeout` (routing.session_idle_ms: the
//   placement ends then too, and Ollama has unloaded the cache by its keep_alive anyway).
//
// Each entry also records preheats: the node a preheat was sent to for the session (so a later
// change that sends the session to the same node sends no second one) and whether it completed
// (the next turn that lands there says `X-Gateway-Preheated: true`).
//
// Thread safety: every member function may be called from any thread; one mutex guards the store.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llmgw::routing {

struct PromptStoreOptions {
  std::size_t max_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds idle_timeout{300'000};
};

// One session's last prompt as kept.
struct StoredPrompt {
  std::string path;                         // "/api/chat", "/v1/chat/completions", ...
  std::shared_ptr<const std::string> body;  // the client's body, as it was sent
  std::string node;                         // the node that served the turn
  std::string preheat_node;                 // a preheat was sent there for the next turn ("")
  bool preheated = false;                   // ... and completed
  std::string failed_node;                  // the last preheat that failed or was skipped ("")
};

// Where a session returning from failover to `node` stands (PromptStore::return_preheat).
enum class ReturnPreheat {
  no_prompt,  // nothing kept: it returns at once, cold
  started,    // none was sent to the node yet: one is begun now (the caller sends it)
  pending,    // sent, not ended: it stays where it is
  completed,  // the node is warm: it returns
  failed,     // failed or skipped: it returns at once
};

class PromptStore {
 public:
  using Clock = std::chrono::steady_clock;
  // What an entry costs besides its strings (hash node, list node, shared_ptr control block).
  static constexpr std::size_t kEntryOverheadBytes = 192;

  explicit PromptStore(PromptStoreOptions options);
  ~PromptStore();
  PromptStore(const PromptStore&) = delete;
  PromptStore& operator=(const PromptStore&) = delete;

  // Records the session's last successful turn (replacing what was kept; its preheat marks end
  // when the turn was served by the preheated node, and stay otherwise), evicting the least
  // recently used entries to stay within max_bytes.
  void remember(std::uint64_t key_position, std::string path, std::string body, std::string node,
                Clock::time_point now);

  // The session's entry, if live (not touched: looking is not a turn).
  std::optional<StoredPrompt> find(std::uint64_t key_position, Clock::time_point now);

  // Every live entry, least recently used first (for planned moves).
  std::vector<std::pair<std::uint64_t, StoredPrompt>> live(Clock::time_point now);

  // Records that a preheat for the session's next turn goes to `node`. False (nothing recorded)
  // when the session has no live entry or one was already sent to `node`.
  bool begin_preheat(std::uint64_t key_position, const std::string& node);
  // The preheat to `node` ended: `completed` (the node answered 2xx) or not (the mark is cleared,
  // so a later change may try again).
  void end_preheat(std::uint64_t key_position, const std::string& node, bool completed);
  // For a failover session whose owner `node` is healthy again (server/preheat.hpp): the state
  // of its preheat there, beginning one (as begin_preheat) when none was sent.
  ReturnPreheat return_preheat(std::uint64_t key_position, const std::string& node);
  // True when a completed preheat of `node` waits for this session's turn there (the turn that
  // finds it says X-Gateway-Preheated).
  bool preheated_on(std::uint64_t key_position, const std::string& node);

  // The node a preheat for the session's next turn was sent to, pending or completed ("" when
  // none): under the ring modes that turn is tried there first (server/preheat.hpp).
  std::string preheat_target(std::uint64_t key_position);
  // While a preheat of `node` for the session's next turn runs (sent, not ended): the size of the
  // kept body and the node that served the last turn (server/preheat.hpp, meet_running_preheat).
  struct RunningPreheat {
    std::size_t bytes = 0;
    std::string served_by;
  };
  std::optional<RunningPreheat> running_preheat(std::uint64_t key_position,
                                                const std::string& node);

  void erase(std::uint64_t key_position);

  std::size_t size(Clock::time_point now);  // live entries (expired ones dropped first)
  std::size_t bytes() const;                // what they cost, as counted against max_bytes
  std::size_t evictions() const;            // entries dropped for room since the start

  // New limits for a running store (a reload): a lower max_bytes evicts at once.
  void set_options(PromptStoreOptions options);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::routing
