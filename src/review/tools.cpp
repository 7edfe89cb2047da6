#include "llmgw/review/tools.hpp"

#include <algorithm>
#include <exception>
// GCC 12 reports std::function inside <regex> as maybe-uninitialized once optimising (a known
// false positive in libstdc++'s regex compiler); keep the warning everywhere else.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop

#include "llmgw/llm/token_budget.hpp"
#include "llmgw/util/text.hpp"

namespace llmgw::review {
namespace {

using nlohmann::json;
using util::split_lines;

std::optional<std::string> string_arg(const json& arguments, std::string_view key) {
  if (!arguments.is_object()) {
    return std::nullopt;
  }
  const auto it = arguments.find(key);
  if (it == arguments.end() || !it->is_string()) {
    return std::nullopt;
  }
  return it->get<std::string>();
}

// Models write numbers as 12, 12.0 or "12"; all mean line 12.
std::optional<int> int_arg(const json& arguments, std::string_view key) {
  if (!arguments.is_object()) {
    return std::nullopt;
  }
  const auto it = arguments.find(key);
  if (it == arguments.end()) {
    return std::nullopt;
  }
  if (it->is_number_integer()) {
    return it->get<int>();
  }
  if (it->is_number_float()) {
    const double value = it->get<double>();
    if (value == static_cast<double>(static_cast<int>(value))) {
      return static_cast<int>(value);
    }
    return std::nullopt;
  }
  if (it->is_string()) {
    const auto text = it->get<std::string>();
    try {
      std::size_t used = 0;
      const int value = std::stoi(text, &used);
      if (used == text.size()) {
        return value;
      }
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string normalise_severity(std::string severity) {
  std::transform(severity.begin(), severity.end(), severity.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (severity == "error" || severity == "critical" || severity == "high" || severity == "bug") {
    return "error";
  }
  if (severity == "warning" || severity == "medium" || severity == "major") {
    return "warning";
  }
  if (severity == "info" || severity == "nit" || severity == "low" || severity == "minor") {
    return "info";
  }
  return "suggestion";
}

ToolOutcome error(std::string text) {
  return {"Error: " + std::move(text), false, false};
}

json schema(json properties, std::vector<std::string> required) {
  return {{"type", "object"}, {"properties", std::move(properties)}, {"required", required}};
}

}  // namespace

std::string DraftComment::rendered_body() const {
  static const std::map<std::string, std::string, std::less<>> labels = {
      {"error", "**Error**"},
      {"warning", "**Warning**"},
      {"suggestion", "**Suggestion**"},
      {"info", "**Note**"}};
  const auto it = labels.find(severity);
  return (it == labels.end() ? std::string{"**Suggestion**"} : it->second) + ": " + body;
}

ReviewTools::ReviewTools(const github::PullRequest& pr, FileReader reader, ToolLimits limits)
    : pr_(pr), reader_(std::move(reader)), limits_(limits), commentable_(pr.file_diffs) {}

std::vector<llm::ToolSpec> ReviewTools::specs() {
  return {
      {"list_files",
       "List the files changed by the pull request, with their status, size of change and the "
       "lines that can take a comment.",
       schema(json::object(), {})},
      {"get_file_diff",
       "Show the diff of one changed file. Every line is prefixed with the SIDE and LINE number to "
       "use in add_comment.",
       schema({{"path", {{"type", "string"}, {"description", "file path as listed"}}}}, {"path"})},
      {"read_file",
       "Read lines of a file as it is at the head of the pull request (1-based, inclusive).",
       schema({{"path", {{"type", "string"}}},
               {"start_line", {{"type", "integer"}, {"minimum", 1}}},
               {"end_line", {{"type", "integer"}, {"minimum", 1}}}},
              {"path"})},
      {"search_code",
       "Search the pull request's files (at head) for a regular expression; returns matching "
       "lines as path:line: text.",
       schema({{"pattern", {{"type", "string"}}}}, {"pattern"})},
      {"add_comment",
       "Draft an inline review comment. The line must be in the file's diff: side RIGHT for added "
       "or unchanged lines (new line numbers), LEFT for removed lines (old line numbers).",
       schema({{"path", {{"type", "string"}}},
               {"line", {{"type", "integer"}}},
               {"side", {{"type", "string"}, {"enum", {"RIGHT", "LEFT"}}}},
               {"body", {{"type", "string"}, {"description", "the comment, concrete and short"}}},
               {"severity",
                {{"type", "string"}, {"enum", {"info", "suggestion", "warning", "error"}}}}},
              {"path", "line", "body"})},
      {"finish", "End the review with an overall summary of the pull request and its main risks.",
       schema({{"summary", {{"type", "string"}}}}, {"summary"})},
  };
}

ToolOutcome ReviewTools::call(std::string_view name, const json& arguments) {
  auto outcome = dispatch(name, arguments);
  outcome.observation = util::valid_utf8(outcome.observation);
  return outcome;
}

ToolOutcome ReviewTools::dispatch(std::string_view name, const json& arguments) {
  if (finished_) {
    return error("the review is finished; no more tools can be called");
  }
  try {
    if (name == "list_files") {
      return list_files();
    }
    if (name == "get_file_diff") {
      return get_file_diff(arguments);
    }
    if (name == "read_file") {
      return read_file(arguments);
    }
    if (name == "search_code") {
      return search_code(arguments);
    }
    if (name == "add_comment") {
      return add_comment(arguments);
    }
    if (name == "finish") {
      return finish(arguments);
    }
  } catch (const std::exception& e) {
    return error(std::string{name} + " failed: " + e.what());
  }
  return error("unknown tool \"" + std::string{name} +
               "\"; the tools are list_files, get_file_diff, read_file, search_code, "
               "add_comment, finish");
}

std::string ReviewTools::overview() const {
  std::string out = "Pull request " + pr_.repo.full_name() + "#" + std::to_string(pr_.meta.number) +
                    ": " + pr_.meta.title + "\n";
  out += "Author: " + pr_.meta.author + "; " + pr_.meta.head_ref + " -> " + pr_.meta.base_ref +
         "\n\nDescription:\n";
  out +=
      pr_.meta.body.empty() ? std::string{"(none)"} : llm::truncate_to_tokens(pr_.meta.body, 800);
  out += "\n\nChanged files (" + std::to_string(pr_.files.size()) + "):\n";
  int listed = 0;
  for (const auto& file : pr_.files) {
    if (++listed > 200) {
      out += "... and " + std::to_string(pr_.files.size() - 200) + " more (use list_files)\n";
      break;
    }
    out += "- " + file.filename + " (" + file.status + ", +" + std::to_string(file.additions) +
           " -" + std::to_string(file.deletions) + ")\n";
  }
  return out;
}

std::string ReviewTools::limit(std::string text) const {
  return llm::truncate_to_tokens(text, limits_.max_observation_tokens,
                                 "\n[... cut to fit; ask for a narrower range ...]\n");
}

ToolOutcome ReviewTools::list_files() const {
  std::string out;
  for (const auto& file : pr_.files) {
    out += file.filename + " (" + file.status + ", +" + std::to_string(file.additions) + " -" +
           std::to_string(file.deletions) + ")";
    const auto lines = commentable_.describe(file.filename);
    out += lines.empty() ? " no commentable lines" : " commentable: " + lines;
    out += "\n";
  }
  if (out.empty()) {
    out = "The pull request changes no files.";
  }
  return {limit(std::move(out))};
}

ToolOutcome ReviewTools::get_file_diff(const json& arguments) const {
  const auto path = string_arg(arguments, "path");
  if (!path) {
    return error("get_file_diff needs {\"path\": \"<file>\"}");
  }
  const auto* file = pr_.find_file_diff(*path);
  if (file == nullptr) {
    return error("\"" + *path + "\" is not a changed file; call list_files for the paths");
  }
  if (file->hunks.empty()) {
    return {*path + " has no textual diff (binary, renamed without changes, or too large)."};
  }
  std::string out = "Diff of " + *path + " (SIDE LINE | text):\n";
  for (const auto& hunk : file->hunks) {
    out += "@@ -" + std::to_string(hunk.old_start) + "," + std::to_string(hunk.old_count) + " +" +
           std::to_string(hunk.new_start) + "," + std::to_string(hunk.new_count) + " @@ " +
           hunk.section + "\n";
    for (const auto& line : hunk.lines) {
      switch (line.kind) {
        case github::LineKind::added:
          out += "RIGHT " + std::to_string(line.new_line) + " | +" + line.text + "\n";
          break;
        case github::LineKind::removed:
          out += "LEFT " + std::to_string(line.old_line) + " | -" + line.text + "\n";
          break;
        case github::LineKind::context:
          out += "RIGHT " + std::to_string(line.new_line) + " |  " + line.text + "\n";
          break;
      }
    }
  }
  return {limit(std::move(out))};
}

const std::string* ReviewTools::cached_file(const std::string& path, std::string& error_text) {
  auto it = file_cache_.find(path);
  if (it == file_cache_.end()) {
    try {
      it = file_cache_.emplace(path, reader_ ? reader_(path) : std::nullopt).first;
    } catch (const std::exception& e) {
      error_text = "could not read " + path + ": " + e.what();
      return nullptr;
    }
  }
  if (!it->second) {
    error_text = path + " does not exist at the head of the pull request";
    return nullptr;
  }
  return &*it->second;
}

ToolOutcome ReviewTools::read_file(const json& arguments) {
  const auto path = string_arg(arguments, "path");
  if (!path) {
    return error("read_file needs {\"path\": \"<file>\", \"start_line\": n, \"end_line\": m}");
  }
  std::string why;
  const auto* content = cached_file(*path, why);
  if (content == nullptr) {
    return error(why);
  }
  const auto lines = split_lines(*content);
  const int total = static_cast<int>(lines.size());
  const int start = std::max(1, int_arg(arguments, "start_line").value_or(1));
  int end = int_arg(arguments, "end_line").value_or(start + limits_.max_read_lines - 1);
  end = std::min({end, total, start + limits_.max_read_lines - 1});
  if (start > total) {
    return error(*path + " has only " + std::to_string(total) + " lines");
  }
  std::string out = *path + " lines " + std::to_string(start) + "-" + std::to_string(end) + " of " +
                    std::to_string(total) + ":\n";
  for (int i = start; i <= end; ++i) {
    out += std::to_string(i) + ": " + std::string{lines[static_cast<std::size_t>(i - 1)]} + "\n";
  }
  return {limit(std::move(out))};
}

ToolOutcome ReviewTools::search_code(const json& arguments) {
  const auto pattern = string_arg(arguments, "pattern");
  if (!pattern || pattern->empty()) {
    return error("search_code needs {\"pattern\": \"<regular expression>\"}");
  }
  std::optional<std::regex> regex;
  try {
    regex.emplace(*pattern, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error&) {
    regex.reset();  // not a valid expression: search for the text literally
  }
  std::string out;
  int matches = 0;
  int searched = 0;
  for (const auto& file : pr_.files) {
    if (file.status == "removed") {
      continue;
    }
    // Each file is one contents API call the first time; a huge PR is searched in part.
    if (++searched > limits_.max_search_files) {
      out +=
          "[only the first " + std::to_string(limits_.max_search_files) + " files were searched]\n";
      break;
    }
    std::string why;
    const auto* content = cached_file(file.filename, why);
    if (content == nullptr) {
      continue;
    }
    int number = 0;
    for (const auto line : split_lines(*content)) {
      ++number;
      // Very long lines (minified files) are skipped: std::regex recurses per character.
      const bool hit =
          line.size() <= 2000 && (regex ? std::regex_search(line.begin(), line.end(), *regex)
                                        : line.find(*pattern) != line.npos);
      if (!hit) {
        continue;
      }
      if (++matches > limits_.max_search_results) {
        out += "[more matches left out; refine the pattern]\n";
        return {limit(std::move(out))};
      }
      out += file.filename + ":" + std::to_string(number) + ": " +
             std::string{line.substr(0, 200)} + "\n";
    }
  }
  if (out.empty()) {
    out = "No matches for " + *pattern + " in the pull request's files.";
  }
  return {limit(std::move(out))};
}

ToolOutcome ReviewTools::add_comment(const json& arguments) {
  const auto path = string_arg(arguments, "path");
  const auto line = int_arg(arguments, "line");
  const auto body = string_arg(arguments, "body");
  const auto reject = [this](std::string text) {
    ++rejected_comments_;
    return error(std::move(text) + " The comment was not added.");
  };
  if (!path || !line || !body) {
    return reject(
        "add_comment needs {\"path\": \"<file>\", \"line\": <number>, \"side\": "
        "\"RIGHT\"|\"LEFT\", "
        "\"body\": \"<text>\", \"severity\": \"info\"|\"suggestion\"|\"warning\"|\"error\"}.");
  }
  if (body->find_first_not_of(" \t\r\n") == std::string::npos) {
    return reject("the comment body is empty.");
  }
  const auto side_text = string_arg(arguments, "side").value_or("RIGHT");
  const auto side = github::parse_side(side_text);
  if (!side) {
    return reject(
        "side must be \"RIGHT\" (added or unchanged lines) or \"LEFT\" (removed lines), "
        "not \"" +
        side_text + "\".");
  }
  if (!commentable_.has_file(*path)) {
    return reject("\"" + *path + "\" is not a changed file of this pull request; call list_files.");
  }
  if (!commentable_.contains(*path, *line, *side)) {
    std::string text = "line " + std::to_string(*line) + " (" + std::string{to_string(*side)} +
                       ") of " + *path + " is not part of the diff, so GitHub cannot anchor a " +
                       "comment there.";
    const auto allowed = commentable_.describe(*path);
    text += allowed.empty() ? " The file has no commentable lines."
                            : " Commentable lines: " + allowed + ".";
    if (const auto nearest = commentable_.nearest(*path, *line, *side)) {
      text +=
          " The nearest is " + std::string{to_string(*side)} + " " + std::to_string(*nearest) + ".";
    }
    return reject(std::move(text));
  }
  const bool duplicate = std::any_of(comments_.begin(), comments_.end(), [&](const auto& c) {
    return c.path == *path && c.line == *line && c.side == *side;
  });
  if (duplicate) {
    return reject("there is already a comment on " + *path + ":" + std::to_string(*line) +
                  "; put everything about one line in one comment.");
  }
  if (static_cast<int>(comments_.size()) >= limits_.max_comments) {
    return reject("the limit of " + std::to_string(limits_.max_comments) +
                  " comments is reached; call finish with your summary.");
  }
  comments_.push_back({*path, *line, *side,
                       normalise_severity(string_arg(arguments, "severity").value_or("")), *body});
  return {"Comment added on " + *path + ":" + std::to_string(*line) + " (" +
          std::string{to_string(*side)} + "); " + std::to_string(comments_.size()) +
          " of at most " + std::to_string(limits_.max_comments) + " comments drafted."};
}

ToolOutcome ReviewTools::finish(const json& arguments) {
  const auto summary = string_arg(arguments, "summary");
  if (!summary || summary->find_first_not_of(" \t\r\n") == std::string::npos) {
    return error("finish needs {\"summary\": \"<overall review>\"}");
  }
  summary_ = *summary;
  finished_ = true;
  return {"Review finished with " + std::to_string(comments_.size()) + " comment(s).", true, true};
}

}  // namespace llmgw::review
