#include "llmgw/review/tools.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
// GCC 12 reports std::function inside <regex> as maybe-uninitialized once optimising (a known
// false positive in libstdc++'s regex compiler); keep the warning everywhere else.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop

#include "llmgw/llm/token_budget.hpp"
#include "llmgw/review/diff_view.hpp"
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

// Models write numbers as 12, 12.0 or "12"; all mean line 12. Anything that is not a whole
// number in [1, 10^9] is no line: 4294967313 must not wrap to 17, and a float out of int's range
// must not reach a conversion (undefined behaviour).
std::optional<int> int_arg(const json& arguments, std::string_view key) {
  constexpr std::int64_t kMaxLine = 1'000'000'000;
  if (!arguments.is_object()) {
    return std::nullopt;
  }
  const auto it = arguments.find(key);
  if (it == arguments.end()) {
    return std::nullopt;
  }
  const auto in_range = [](auto value) -> std::optional<int> {
    if (value < 1 || value > kMaxLine) {
      return std::nullopt;
    }
    return static_cast<int>(value);
  };
  if (it->is_number_unsigned()) {
    const auto value = it->get<std::uint64_t>();
    return value > static_cast<std::uint64_t>(kMaxLine)
               ? std::nullopt
               : in_range(static_cast<std::int64_t>(value));
  }
  if (it->is_number_integer()) {
    return in_range(it->get<std::int64_t>());
  }
  if (it->is_number_float()) {
    const double value = it->get<double>();
    if (!std::isfinite(value) || value != std::floor(value) || value < 1 ||
        value > static_cast<double>(kMaxLine)) {
      return std::nullopt;
    }
    return static_cast<int>(value);
  }
  if (it->is_string()) {
    const auto text = it->get<std::string>();
    std::int64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec == std::errc{} && ptr == end) {
      return in_range(value);
    }
  }
  return std::nullopt;
}

bool bool_arg(const json& arguments, std::string_view key) {
  if (!arguments.is_object()) {
    return false;
  }
  const auto it = arguments.find(key);
  if (it == arguments.end()) {
    return false;
  }
  if (it->is_boolean()) {
    return it->get<bool>();
  }
  return it->is_string() && (it->get<std::string>() == "true" || it->get<std::string>() == "1");
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

// Why GitHub could not anchor a comment on lines first..last of path (empty when it can).
std::optional<std::string> anchor_problem(const github::CommentableLines& commentable,
                                          const std::string& path, int first, int last,
                                          github::Side side) {
  const std::string side_text{to_string(side)};
  if (!commentable.contains(path, last, side)) {
    std::string text = "line " + std::to_string(last) + " (" + side_text + ") of " + path +
                       " is not part of the diff, so GitHub cannot anchor a comment there.";
    const auto allowed = commentable.describe(path);
    text += allowed.empty() ? " The file has no commentable lines."
                            : " Commentable lines: " + allowed + ".";
    if (const auto nearest = commentable.nearest(path, last, side)) {
      text += " The nearest is " + side_text + " " + std::to_string(*nearest) + ".";
    }
    return text;
  }
  for (int n = first; n < last; ++n) {
    if (!commentable.contains(path, n, side)) {
      return "line " + std::to_string(n) + " (" + side_text + ") of " + path +
             " is not part of the diff; a multi-line comment must stay within one hunk. "
             "Commentable lines: " +
             commentable.describe(path) + ".";
    }
  }
  return std::nullopt;
}

}  // namespace

std::string DraftComment::rendered_body() const {
  static const std::map<std::string, std::string, std::less<>> labels = {
      {"error", "**Error**"},
      {"warning", "**Warning**"},
      {"suggestion", "**Suggestion**"},
      {"info", "**Note**"}};
  const auto it = labels.find(severity);
  auto out = (it == labels.end() ? std::string{"**Suggestion**"} : it->second) + ": " + body;
  if (suggestion) {
    // A fence longer than any run of backticks inside, so the block cannot end early.
    std::size_t longest = 0;
    std::size_t run = 0;
    for (const char c : *suggestion) {
      run = c == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    const std::string fence(std::max<std::size_t>(3, longest + 1), '`');
    out += "\n\n" + fence + "suggestion\n" + *suggestion;
    if (!suggestion->empty() && suggestion->back() != '\n') {
      out += "\n";
    }
    out += fence;
  }
  return out;
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
       "use in add_comment. A long diff comes in pages: pass start_line/end_line (new-file line "
       "numbers) for a part; expand: true also shows the enclosing function or block from the "
       "file (lines marked 'N :' are context only and cannot take a comment).",
       schema({{"path", {{"type", "string"}, {"description", "file path as listed"}}},
               {"start_line", {{"type", "integer"}, {"minimum", 1}}},
               {"end_line", {{"type", "integer"}, {"minimum", 1}}},
               {"expand", {{"type", "boolean"}}}},
              {"path"})},
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
       "or unchanged lines (new line numbers), LEFT for removed lines (old line numbers). For "
       "several lines give start_line too (every line from start_line to line must be in the "
       "diff). suggestion: the exact replacement text for those lines (RIGHT only), which the "
       "author can apply with one click.",
       schema({{"path", {{"type", "string"}}},
               {"line", {{"type", "integer"}}},
               {"start_line", {{"type", "integer"}}},
               {"suggestion", {{"type", "string"}}},
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
  return llm::truncate_to_tokens(
      text, limits_.max_observation_tokens,
      "\n[... cut to fit; ask for a narrower range (start_line and end_line) ...]\n");
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

ToolOutcome ReviewTools::get_file_diff(const json& arguments) {
  const auto path = string_arg(arguments, "path");
  if (!path) {
    return error(
        "get_file_diff needs {\"path\": \"<file>\"} (optional \"start_line\", \"end_line\", "
        "\"expand\")");
  }
  const auto* file = pr_.find_file_diff(*path);
  if (file == nullptr) {
    return error("\"" + *path + "\" is not a changed file; call list_files for the paths");
  }
  if (file->hunks.empty()) {
    return {*path + " has no textual diff (binary, renamed without changes, or too large)."};
  }
  DiffViewOptions options;
  const bool has_start = arguments.is_object() && arguments.contains("start_line");
  const bool has_end = arguments.is_object() && arguments.contains("end_line");
  const auto start = int_arg(arguments, "start_line");
  const auto end = int_arg(arguments, "end_line");
  if ((has_start && !start) || (has_end && !end) || (start && end && *end < *start)) {
    return error("start_line and end_line must be line numbers (1 or more), start <= end");
  }
  options.start_line = start.value_or(1);
  options.end_line = end.value_or(0);
  options.expand = bool_arg(arguments, "expand");
  const std::string heading = "Diff of " + *path + " (SIDE LINE | text):\n";
  const auto budget_bytes =
      llm::kBytesPerTokenEstimate * std::max<std::int64_t>(1, limits_.max_observation_tokens - 1);
  options.max_bytes = static_cast<std::size_t>(
      std::max<std::int64_t>(512, budget_bytes - static_cast<std::int64_t>(heading.size())));
  const std::string* head = nullptr;
  if (options.expand && !file->is_deleted) {
    std::string why;
    head = cached_file(*path, why);  // without the file, the plain diff still helps
  }
  auto view = render_file_diff(*file, options, head);
  if (view.text.empty()) {
    return {"No diff lines of " + *path + " in lines " + std::to_string(options.start_line) + "-" +
            (end ? std::to_string(*end) : std::string{"end"}) + "."};
  }
  return {limit(heading + view.text)};
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
  const bool has_start = arguments.contains("start_line") && !arguments["start_line"].is_null();
  const auto start_line = int_arg(arguments, "start_line");
  if (has_start && (!start_line || *start_line > *line)) {
    return reject("start_line must be a line number no greater than line.");
  }
  if (auto problem =
          anchor_problem(commentable_, *path, start_line.value_or(*line), *line, *side)) {
    return reject(std::move(*problem));
  }
  const auto suggestion = string_arg(arguments, "suggestion");
  if (suggestion && *side != github::Side::right) {
    return reject("a suggestion replaces new lines: use side RIGHT.");
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
  DraftComment comment;
  comment.path = *path;
  comment.line = *line;
  comment.side = *side;
  comment.severity = normalise_severity(string_arg(arguments, "severity").value_or(""));
  comment.body = *body;
  if (start_line && *start_line < *line) {
    comment.start_line = start_line;
  }
  comment.suggestion = suggestion;
  comments_.push_back(std::move(comment));
  const auto where = (start_line && *start_line < *line ? std::to_string(*start_line) + "-" : "") +
                     std::to_string(*line);
  return {"Comment added on " + *path + ":" + where + " (" + std::string{to_string(*side)} + "); " +
          std::to_string(comments_.size()) + " of at most " + std::to_string(limits_.max_comments) +
          " comments drafted."};
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
