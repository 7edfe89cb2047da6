#pragma once

// The text of get_file_diff: one file's hunks with the SIDE and LINE of every line, limited to a
// line range and to a size, optionally widened to the enclosing function or block.
//
// A 1,200-line file does not fit an 8k context in one observation. The view therefore takes a
// range of new-file lines (removed lines count at the position where they were, old lines for a
// deleted file), and when the text would pass max_bytes it stops at a whole line and says which
// start_line shows the rest, so a model can page through any file.
//
// Expansion: each shown hunk is widened, from the file at head, to the smallest enclosing block
// by indentation: upwards to the first non-blank line indented less than the hunk, downwards to
// the first such line (kept when it closes the block: "}", ")", "]", "end"). Worked example: a
// hunk over lines 15-19 indented by 2 inside "int f() {" (line 3) and "}" (line 31) shows 3-14
// and 20-31 as context. Those lines are marked "N : text": they are not in the diff and cannot
// take a comment.
//
// Pure function; thread-compatible.

#include <cstddef>
#include <optional>
#include <string>

#include "llmgw/github/diff.hpp"

namespace llmgw::review {

struct DiffViewOptions {
  int start_line = 1;
  int end_line = 0;  // 0: to the end
  bool expand = false;
  std::size_t max_bytes = 12'000;
  int max_expand_lines = 150;  // per direction and hunk
};

struct DiffView {
  std::string text;
  std::optional<int> next_start_line;  // set when the view was cut to fit
};

// `head` is the file at the head commit (needed only for expansion; nullptr: no expansion).
DiffView render_file_diff(const github::FileDiff& file, const DiffViewOptions& options,
                          const std::string* head);

}  // namespace llmgw::review
