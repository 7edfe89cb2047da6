#pragma once

// A unified-diff parser (git's format, as GitHub serves it with Accept:
// application/vnd.github.diff, and the per-file "patch" field of the pull request files API) and
// the map of lines a review comment may be anchored to.
//
// GitHub accepts an inline comment only on a line that appears in one of the file's hunks:
//   - side RIGHT: an added ('+') or context (' ') line, numbered in the new file;
//   - side LEFT:  a removed ('-') line, numbered in the old file.
// Worked example: the hunk "@@ -10,3 +10,4 @@" with lines " a", "-b", "+c", "+d", " e" allows
// RIGHT 10 (a), 11 (c), 12 (d), 13 (e) and LEFT 11 (b). (GitHub also takes LEFT on context lines;
// we only offer the sides above so that every comment we post points at a change or its context.)
//
// Pure functions and value types; thread-compatible.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::github {

enum class Side { left, right };

// "LEFT" / "RIGHT", as GitHub spells them.
std::string_view to_string(Side side) noexcept;
// Accepts "LEFT"/"RIGHT" in any case; nullopt otherwise.
std::optional<Side> parse_side(std::string_view text) noexcept;

enum class LineKind { context, added, removed };

struct DiffLine {
  LineKind kind = LineKind::context;
  int old_line = 0;  // 0 for added lines
  int new_line = 0;  // 0 for removed lines
  std::string text;  // without the leading '+', '-' or ' '
};

struct Hunk {
  int old_start = 0;
  int old_count = 0;
  int new_start = 0;
  int new_count = 0;
  std::string section;  // text after the second "@@" (often the enclosing function), trimmed
  std::vector<DiffLine> lines;
};

struct FileDiff {
  std::string old_path;  // empty for a new file
  std::string new_path;  // empty for a deleted file
  bool is_new = false;
  bool is_deleted = false;
  bool is_binary = false;
  std::vector<Hunk> hunks;

  // The path GitHub uses for comments: the new path, or the old one for a deleted file.
  const std::string& path() const noexcept { return new_path.empty() ? old_path : new_path; }
  // True when (line, side) appears in a hunk (see the rules at the top of this file).
  bool can_comment(int line, Side side) const noexcept;
  // The hunks re-rendered as patch text ("@@ ... @@" headers and prefixed lines).
  std::string to_patch() const;
};

// Parses a whole multi-file diff ("diff --git a/x b/x" sections). Tolerates CRLF line ends,
// "\ No newline at end of file" markers, binary files, renames and mode-only changes. Text that
// is not part of a recognised section is skipped, never an error.
std::vector<FileDiff> parse_unified_diff(std::string_view text);

// Parses one file's hunks only (the files API "patch" field, which has no file headers).
FileDiff parse_file_patch(std::string_view path, std::string_view patch);

// Where comments may go, by path; built once from the parsed diff.
class CommentableLines {
 public:
  CommentableLines() = default;
  explicit CommentableLines(const std::vector<FileDiff>& files);

  bool contains(std::string_view path, int line, Side side) const;
  bool has_file(std::string_view path) const;
  // A short human (and model) readable description of the allowed lines of a file, as ranges:
  // "RIGHT 10-13, 40-52; LEFT 11". Empty when the file has no commentable lines.
  std::string describe(std::string_view path) const;
  // The allowed line of `side` nearest to `line` in `path`, if any.
  std::optional<int> nearest(std::string_view path, int line, Side side) const;

 private:
  struct Lines {
    std::set<int> left;
    std::set<int> right;
  };
  std::map<std::string, Lines, std::less<>> files_;
};

}  // namespace llmgw::github
