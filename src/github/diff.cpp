#include "llmgw/github/diff.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iterator>
#include <limits>

#include "llmgw/util/text.hpp"

namespace llmgw::github {
namespace {

using util::split_lines;
using util::trim;

bool starts_with(std::string_view text, std::string_view prefix) noexcept {
  return text.substr(0, prefix.size()) == prefix;
}

bool parse_int(std::string_view text, int& out) noexcept {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end && out >= 0;
}

// "12,5" or "12" (count 1, as the format says).
bool parse_range(std::string_view text, int& start, int& count) noexcept {
  const auto comma = text.find(',');
  if (comma == std::string_view::npos) {
    count = 1;
    return parse_int(text, start);
  }
  return parse_int(text.substr(0, comma), start) && parse_int(text.substr(comma + 1), count);
}

// "@@ -10,3 +10,4 @@ section"
std::optional<Hunk> parse_hunk_header(std::string_view line) {
  if (!starts_with(line, "@@ -")) {
    return std::nullopt;
  }
  const auto close = line.find(" @@", 3);
  if (close == std::string_view::npos) {
    return std::nullopt;
  }
  const auto ranges = line.substr(4, close - 4);  // "10,3 +10,4"
  const auto plus = ranges.find(" +");
  if (plus == std::string_view::npos) {
    return std::nullopt;
  }
  Hunk hunk;
  if (!parse_range(ranges.substr(0, plus), hunk.old_start, hunk.old_count) ||
      !parse_range(ranges.substr(plus + 2), hunk.new_start, hunk.new_count)) {
    return std::nullopt;
  }
  // Every line of the hunk must be numbered within int ("+2147483647,2" is no real file's hunk).
  constexpr long long kMaxLine = std::numeric_limits<int>::max();
  if (static_cast<long long>(hunk.old_start) + hunk.old_count - 1 > kMaxLine ||
      static_cast<long long>(hunk.new_start) + hunk.new_count - 1 > kMaxLine) {
    return std::nullopt;
  }
  hunk.section = std::string{trim(line.substr(close + 3))};
  return hunk;
}

// Git quotes paths with unusual bytes: "a/t\303\244st" -> a/täst. Handles the escapes git emits.
std::string unquote_path(std::string_view path) {
  if (path.size() < 2 || path.front() != '"' || path.back() != '"') {
    return std::string{path};
  }
  path = path.substr(1, path.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '\\' || i + 1 == path.size()) {
      out += path[i];
      continue;
    }
    const char next = path[++i];
    if (next >= '0' && next <= '7' && i + 2 < path.size()) {
      out += static_cast<char>(std::strtol(std::string{path.substr(i, 3)}.c_str(), nullptr, 8));
      i += 2;
    } else if (next == 'n') {
      out += '\n';
    } else if (next == 't') {
      out += '\t';
    } else {
      out += next;  // \" and \\ and anything else literal
    }
  }
  return out;
}

// "--- a/x\t2024-01-01" -> "x"; "/dev/null" -> "".
std::string header_path(std::string_view rest) {
  const auto tab = rest.find('\t');
  if (tab != std::string_view::npos) {
    rest = rest.substr(0, tab);
  }
  auto path = unquote_path(trim(rest));
  if (path == "/dev/null") {
    return {};
  }
  if (starts_with(path, "a/") || starts_with(path, "b/")) {
    path.erase(0, 2);
  }
  return path;
}

// "diff --git a/x b/x": the two halves are the same path unless the file was renamed, in which
// case "rename from/to" lines or ---/+++ lines follow and override this guess.
void guess_paths_from_git_line(std::string_view rest, FileDiff& file) {
  if (!rest.empty() && rest.front() == '"') {
    const auto close = rest.find("\" ", 1);
    if (close != std::string_view::npos) {
      file.old_path = header_path(rest.substr(0, close + 1));
      file.new_path = header_path(rest.substr(close + 2));
      return;
    }
  }
  // Equal halves "a/<p> b/<p>" (the common case; also right when <p> contains spaces). Halves
  // shorter than the prefix ("diff --git x x" from `git diff --no-prefix`) compare whole.
  if (rest.size() % 2 == 1) {
    const auto half = rest.size() / 2;
    const auto left = rest.substr(0, half);
    const auto right = rest.substr(half + 1);
    const auto skip = std::min<std::size_t>(2, half);
    if (rest[half] == ' ' && left.substr(skip) == right.substr(skip)) {
      file.old_path = header_path(left);
      file.new_path = header_path(right);
      return;
    }
  }
  const auto space = rest.find(" b/");
  if (space != std::string_view::npos) {
    file.old_path = header_path(rest.substr(0, space));
    file.new_path = header_path(rest.substr(space + 1));
  }
}

class Parser {
 public:
  void feed(std::string_view line) {
    if (in_hunk()) {
      consume_hunk_line(line);
      return;
    }
    if (starts_with(line, "diff --git ")) {
      start_file();
      guess_paths_from_git_line(line.substr(11), *current_);
    } else if (starts_with(line, "@@ ")) {
      if (!current_) {
        start_file();
      }
      if (auto hunk = parse_hunk_header(line)) {
        current_->hunks.push_back(std::move(*hunk));
        old_left_ = current_->hunks.back().old_count;
        new_left_ = current_->hunks.back().new_count;
        old_line_ = current_->hunks.back().old_start;
        new_line_ = current_->hunks.back().new_start;
      }
    } else if (starts_with(line, "--- ")) {
      // A plain unified diff (no "diff --git" lines) starts each file here.
      if (!current_ || !current_->hunks.empty()) {
        start_file();
      }
      current_->old_path = header_path(line.substr(4));
      current_->is_new = current_->old_path.empty();
    } else if (current_ && starts_with(line, "+++ ")) {
      current_->new_path = header_path(line.substr(4));
      current_->is_deleted = current_->new_path.empty();
    } else if (current_ && starts_with(line, "new file mode")) {
      current_->is_new = true;
    } else if (current_ && starts_with(line, "deleted file mode")) {
      current_->is_deleted = true;
    } else if (current_ && starts_with(line, "rename from ")) {
      current_->old_path = unquote_path(line.substr(12));
    } else if (current_ && starts_with(line, "rename to ")) {
      current_->new_path = unquote_path(line.substr(10));
    } else if (current_ && (starts_with(line, "Binary files ") || line == "GIT binary patch")) {
      current_->is_binary = true;
    }
  }

  std::vector<FileDiff> finish() {
    for (auto& file : files_) {
      if (file.is_new) {
        file.old_path.clear();
      }
      if (file.is_deleted) {
        file.new_path.clear();
      }
    }
    return std::move(files_);
  }

  FileDiff& start_file() {
    files_.emplace_back();
    current_ = &files_.back();
    old_left_ = new_left_ = 0;
    return *current_;
  }

 private:
  bool in_hunk() const noexcept { return old_left_ > 0 || new_left_ > 0; }

  void consume_hunk_line(std::string_view line) {
    auto& hunk = current_->hunks.back();
    const char marker = line.empty() ? ' ' : line.front();  // some tools strip a lone ' '
    const auto text = std::string{line.empty() ? line : line.substr(1)};
    if (marker == '\\') {
      return;  // "\ No newline at end of file" belongs to the previous line
    }
    if (marker == '+' && new_left_ > 0) {
      hunk.lines.push_back({LineKind::added, 0, static_cast<int>(new_line_++), text});
      --new_left_;
    } else if (marker == '-' && old_left_ > 0) {
      hunk.lines.push_back({LineKind::removed, static_cast<int>(old_line_++), 0, text});
      --old_left_;
    } else if (marker == ' ' && old_left_ > 0 && new_left_ > 0) {
      hunk.lines.push_back(
          {LineKind::context, static_cast<int>(old_line_++), static_cast<int>(new_line_++), text});
      --old_left_;
      --new_left_;
    } else {
      // The hunk's counts disagree with its body: stop the hunk and read the line as a header.
      old_left_ = new_left_ = 0;
      feed(line);
    }
  }

  std::vector<FileDiff> files_;
  FileDiff* current_ = nullptr;
  int old_left_ = 0;
  int new_left_ = 0;
  // Wider than the numbers they hand out: the increment after a hunk's last line (which may be
  // INT_MAX, parse_hunk_header) does not overflow.
  long long old_line_ = 0;
  long long new_line_ = 0;
};

std::string describe_ranges(const std::set<int>& lines) {
  std::string out;
  for (auto it = lines.begin(); it != lines.end();) {
    const int first = *it;
    int last = first;
    ++it;
    while (it != lines.end() && *it == last + 1) {
      last = *it;
      ++it;
    }
    if (!out.empty()) {
      out += ", ";
    }
    out += std::to_string(first);
    if (last != first) {
      out += '-';
      out += std::to_string(last);
    }
  }
  return out;
}

}  // namespace

std::string_view to_string(Side side) noexcept {
  return side == Side::left ? "LEFT" : "RIGHT";
}

std::optional<Side> parse_side(std::string_view text) noexcept {
  std::string upper;
  for (const char c : text) {
    upper += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  if (upper == "LEFT") {
    return Side::left;
  }
  if (upper == "RIGHT") {
    return Side::right;
  }
  return std::nullopt;
}

bool FileDiff::can_comment(int line, Side side) const noexcept {
  for (const auto& hunk : hunks) {
    for (const auto& diff_line : hunk.lines) {
      if (side == Side::right && diff_line.kind != LineKind::removed &&
          diff_line.new_line == line) {
        return true;
      }
      if (side == Side::left && diff_line.kind == LineKind::removed && diff_line.old_line == line) {
        return true;
      }
    }
  }
  return false;
}

std::string FileDiff::to_patch() const {
  std::string out;
  for (const auto& hunk : hunks) {
    out += "@@ -" + std::to_string(hunk.old_start) + "," + std::to_string(hunk.old_count) + " +" +
           std::to_string(hunk.new_start) + "," + std::to_string(hunk.new_count) + " @@";
    if (!hunk.section.empty()) {
      out += " " + hunk.section;
    }
    out += '\n';
    for (const auto& line : hunk.lines) {
      out += line.kind == LineKind::added ? '+' : line.kind == LineKind::removed ? '-' : ' ';
      out += line.text;
      out += '\n';
    }
  }
  return out;
}

std::vector<FileDiff> parse_unified_diff(std::string_view text) {
  Parser parser;
  for (const auto line : split_lines(text)) {
    parser.feed(line);
  }
  return parser.finish();
}

FileDiff parse_file_patch(std::string_view path, std::string_view patch) {
  Parser parser;
  auto& file = parser.start_file();
  file.old_path = file.new_path = std::string{path};
  for (const auto line : split_lines(patch)) {
    parser.feed(line);
  }
  auto files = parser.finish();
  return files.empty() ? FileDiff{} : std::move(files.front());
}

CommentableLines::CommentableLines(const std::vector<FileDiff>& files) {
  for (const auto& file : files) {
    auto& lines = files_[file.path()];
    for (const auto& hunk : file.hunks) {
      for (const auto& line : hunk.lines) {
        if (line.kind == LineKind::removed) {
          lines.left.insert(line.old_line);
        } else {
          lines.right.insert(line.new_line);
        }
      }
    }
  }
}

bool CommentableLines::contains(std::string_view path, int line, Side side) const {
  const auto it = files_.find(path);
  if (it == files_.end()) {
    return false;
  }
  const auto& lines = side == Side::left ? it->second.left : it->second.right;
  return lines.contains(line);
}

bool CommentableLines::has_file(std::string_view path) const {
  return files_.contains(path);
}

std::string CommentableLines::describe(std::string_view path) const {
  const auto it = files_.find(path);
  if (it == files_.end()) {
    return {};
  }
  std::string out;
  if (!it->second.right.empty()) {
    out += "RIGHT " + describe_ranges(it->second.right);
  }
  if (!it->second.left.empty()) {
    out += (out.empty() ? "" : "; ") + std::string{"LEFT "} + describe_ranges(it->second.left);
  }
  return out;
}

std::optional<int> CommentableLines::nearest(std::string_view path, int line, Side side) const {
  const auto it = files_.find(path);
  if (it == files_.end()) {
    return std::nullopt;
  }
  const auto& lines = side == Side::left ? it->second.left : it->second.right;
  if (lines.empty()) {
    return std::nullopt;
  }
  const auto above = lines.lower_bound(line);
  if (above == lines.end()) {
    return *std::prev(above);
  }
  if (above == lines.begin() || *above - line <= line - *std::prev(above)) {
    return *above;
  }
  return *std::prev(above);
}

}  // namespace llmgw::github
