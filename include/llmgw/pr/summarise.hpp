#pragma once

// Summarising a pull request with a chat model, within the model's context budget.
//
// When the PR's diff fits the budget, one call writes the whole summary. When it does not, each
// file is summarised on its own (map) and the per-file summaries are combined (reduce). Files that
// cannot be read within the budget (too many files, a patch that still overflows after shrinking)
// are named in the output; nothing is dropped silently.
//
// Markdown output: "# <title>" written by us, the model's "What changed and why" and "Risk areas"
// (streamed as generated when asked), then per-file one-liners and a "Files left out" list.
// JSON output: the same content as fields (see to_json), asked of the model as a JSON Schema.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/github/client.hpp"
#include "llmgw/llm/chat_client.hpp"

namespace llmgw::pr {

struct FileSummary {
  std::string path;
  std::string status;  // GitHub's: added, modified, removed, renamed
  std::string summary;
};

struct Summary {
  std::string repo;  // "owner/name"
  int number = 0;
  std::string title;
  std::string url;
  std::string markdown;  // the whole Markdown document (also in JSON mode, rendered from fields)
  std::string what_changed;
  std::string why;
  std::vector<std::string> risk_areas;
  std::vector<FileSummary> files;
  std::vector<std::string> left_out;  // paths not read: over the budget
  bool map_reduce = false;
  int llm_calls = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

struct SummariseOptions {
  std::int64_t context_tokens = 8192;     // the model's context window
  std::int64_t reply_tokens = 1024;       // reserved for the final summary
  std::int64_t file_reply_tokens = 200;   // reserved for one file's summary (map)
  std::size_t max_map_files = 60;         // more files than this: the smallest are left out
  bool json = false;                      // structured fields instead of streamed Markdown
  bool stream = false;                    // Markdown only: emit model tokens as they arrive
  std::optional<std::string> session_id;  // X-Session-ID on every call
  std::optional<std::int64_t> seed;       // for repeatable runs
  // Receives the Markdown document in pieces as it is produced (Markdown mode only).
  std::function<void(std::string_view)> on_text;
  // One human-readable line per step ("[2/7] src/a.cpp"), for stderr.
  std::function<void(const std::string&)> on_progress;
};

// Summarises `pr`. Throws llm::ApiError / net::TransportError when the model cannot be used.
Summary summarise(const github::PullRequest& pr, llm::ChatClient& client,
                  const SummariseOptions& options);

// {"repo", "number", "title", "url", "what_changed", "why", "risk_areas", "files": [{"path",
//  "status", "summary"}], "left_out", "map_reduce", "usage": {"llm_calls", "prompt_tokens",
//  "completion_tokens"}}
nlohmann::json to_json(const Summary& summary);

// The text given to the model for one file: a header line and its patch (or a note that there is
// no textual diff).
std::string file_section(const github::PullRequest& pr, const github::ChangedFile& file);

}  // namespace llmgw::pr
