#pragma once

// Where a request's session key comes from (DESIGN.md §1, "A conversation stays on its node").
//
// Most clients send no X-Session-ID. Coding agents send their own session headers, OpenAI
// clients may send `prompt_cache_key` in the body, and everyone else sends, turn after turn, a
// conversation that starts the same way. So the key is the first of an ordered list of sources
// that answers (routing.key_sources):
//
//   header           the header named by routing.session_header (X-Session-ID)
//   header:<name>    another header (x-session-affinity: opencode; x-claude-code-session-id:
//                    Claude Code; session-id: Codex)
//   body:prompt_cache_key   the top-level string field of an OpenAI-style body
//   prefix           a fingerprint of how the conversation starts: model + system prompt + first
//                    user message for chat bodies (/api/chat, /v1/chat/completions, /v1/messages),
//                    model + the first routing.prefix_bytes bytes of the prompt for /api/generate
//                    and /v1/completions. Every turn of one conversation repeats that start, so
//                    the fingerprint is the same for all of them.
//
// Worked example with the default list: opencode sends `x-session-affinity: ses_42` and no
// X-Session-ID -> key "ses_42", source "header:x-session-affinity". A curl loop against /api/chat
// with no header -> the fingerprint of {"llama3.2", "You are terse.", "hello"}, source "prefix",
// on every turn. A GET /api/tags -> no key, source "none" (round-robin).
//
// The body is read with simdjson's On-Demand API, no DOM: only the few fields named above are
// copied, at most prefix_bytes of each. A key value is never logged or used as a label: only its
// source is (X-Gateway-Key-Source, llmgw_routing_key_sources_total).
//
// Thread safety: KeySources is immutable after parse; choose_key is a pure function.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::routing {

struct KeySource {
  enum class Kind { header, body_prompt_cache_key, prefix };
  Kind kind = Kind::header;
  std::string header;  // kind header: the header's name
  std::string label;   // as shown in X-Gateway-Key-Source: "header:x-session-id", "prefix", ...
};

// Parses "header,header:x-session-affinity,body:prompt_cache_key,prefix" (comma-separated, blanks
// ignored). A bare `header` means `session_header`. Returns the sources, or the error of the
// first bad entry and that entry's index.
struct KeySourcesOrError {
  std::vector<KeySource> sources;
  std::string error;  // empty on success
  std::optional<std::size_t> error_index;
};
KeySourcesOrError parse_key_sources(std::string_view list, std::string_view session_header);

struct ChosenKey {
  std::string key;                   // empty: no source answered
  std::string_view source = "none";  // a KeySource::label, or "none"
};

// Looks a header up by name (case-insensitive); nullopt when absent.
using HeaderLookup = std::function<std::optional<std::string_view>(std::string_view name)>;

struct BodyFields;

// The key of a request: the first source that answers. `path` decides whether the body is a chat
// or a completion body for the fingerprint; `body` is only read when a body source is reached.
// `scanned`, when given, receives the body's fields if they were read (routing by model then
// reads `model` from them instead of scanning the body a second time).
ChosenKey choose_key(const std::vector<KeySource>& sources, const HeaderLookup& header,
                     std::string_view path, const std::string& body, std::size_t prefix_bytes,
                     std::optional<BodyFields>* scanned = nullptr);

// The fields of an inference body the key sources use, read without building a DOM and without
// copying what is not wanted (simdjson On-Demand, src/routing/body_scan.cpp). `body` is scanned in
// place when its capacity leaves body_scan_padding() bytes past its end (request_reader.cpp
// reserves them), else copied once.
struct BodyFields {
  std::string model;
  std::string prompt_cache_key;
  std::string system;      // top-level "system", or the first message with role "system"
  std::string first_user;  // the first message with role "user" (text parts joined)
  std::string prompt;      // top-level "prompt" (at most prefix_bytes)
  bool valid_json = false;
};
// model_only: stop at the top-level "model".
BodyFields scan_body(const std::string& body, std::size_t prefix_bytes, bool model_only = false);
BodyFields scan_body(std::string_view body, std::size_t prefix_bytes, bool model_only = false);
// The readable bytes a body needs past its end to be scanned in place.
std::size_t body_scan_padding() noexcept;

}  // namespace llmgw::routing
