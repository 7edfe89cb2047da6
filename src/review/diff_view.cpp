#include "llmgw/review/diff_view.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "llmgw/util/text.hpp"

namespace llmgw::review {
namespace {

using github::DiffLine;
using github::Hunk;
using github::LineKind;

// Room kept for the note that says where the next page starts.
constexpr std::size_t kNoteBytes = 200;

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

int indentation(std::string_view line) {
  int width = 0;
  for (const char c : line) {
    if (c == ' ') {
      ++width;
    } else if (c == '\t') {
      width += 4;
    } else {
      break;
    }
  }
  return width;
}

bool closes_block(std::string_view line) {
  const auto text = util::trim(line);
  return text.starts_with("}") || text.starts_with(")") || text.starts_with("]") ||
         text.starts_with("end");
}

// Where each diff line sits in the new file: its new number, or for a removed line the number
// of the line that follows it (old numbers for a deleted file).
std::vector<int> positions(const Hunk& hunk, bool deleted_file) {
  std::vector<int> out;
  int next_new = hunk.new_start;
  for (const auto& line : hunk.lines) {
    if (deleted_file) {
      out.push_back(line.old_line);
    } else if (line.kind == LineKind::removed) {
      out.push_back(std::max(1, next_new));
    } else {
      out.push_back(line.new_line);
      next_new = line.new_line + 1;
    }
  }
  return out;
}

std::string render_line(const DiffLine& line) {
  switch (line.kind) {
    case LineKind::added:
      return "RIGHT " + std::to_string(line.new_line) + " | +" + line.text + "\n";
    case LineKind::removed:
      return "LEFT " + std::to_string(line.old_line) + " | -" + line.text + "\n";
    case LineKind::context:
      break;
  }
  return "RIGHT " + std::to_string(line.new_line) + " |  " + line.text + "\n";
}

// The block around new lines [first, last] of `lines` (1-based), as [begin, end].
std::pair<int, int> enclosing_block(const std::vector<std::string_view>& lines, int first, int last,
                                    int min_indent, int max_lines) {
  const int total = static_cast<int>(lines.size());
  int begin = first;
  for (int n = first - 1; n >= 1 && first - n <= max_lines; --n) {
    const auto text = lines[static_cast<std::size_t>(n - 1)];
    if (!blank(text) && indentation(text) < min_indent) {
      begin = n;
      break;
    }
  }
  int end = last;
  for (int n = last + 1; n <= total && n - last <= max_lines; ++n) {
    const auto text = lines[static_cast<std::size_t>(n - 1)];
    if (!blank(text) && indentation(text) < min_indent) {
      end = closes_block(text) ? n : n - 1;
      break;
    }
  }
  return {begin, end};
}

class Renderer {
 public:
  Renderer(const DiffViewOptions& options, const std::string* head)
      : options_(options),
        end_line_(options.end_line > 0 ? options.end_line : std::numeric_limits<int>::max()) {
    if (head != nullptr && options.expand) {
      head_lines_ = util::split_lines(*head);
    }
  }

  bool in_range(int position) const {
    return position >= options_.start_line && position <= end_line_;
  }

  // Appends one line, or records where the next page starts when it does not fit.
  // A header does not count as a line shown: each page shows at least one line, so paging ends.
  bool add(const std::string& line, int position, bool is_header = false) {
    if (view_.next_start_line) {
      return false;
    }
    if (out_.size() + line.size() + kNoteBytes > options_.max_bytes && lines_added_ > 0) {
      view_.next_start_line = position;
      return false;
    }
    out_ += line;
    lines_added_ += is_header ? 0 : 1;
    return true;
  }

  // Context lines [from, to] of the head file, within the range and not shown yet.
  void add_context(int from, int to) {
    from = std::max({from, options_.start_line, shown_until_ + 1});
    to = std::min({to, end_line_, static_cast<int>(head_lines_.size())});
    for (int n = from; n <= to; ++n) {
      if (!add(std::to_string(n) + " : " + std::string{head_lines_[n - 1]} + "\n", n)) {
        return;
      }
      shown_until_ = n;
    }
  }

  void add_hunk(const Hunk& hunk, bool deleted_file, int next_hunk_start) {
    const auto where = positions(hunk, deleted_file);
    if (std::none_of(where.begin(), where.end(), [&](int p) { return in_range(p); })) {
      return;
    }
    int first_new = 0;
    int last_new = 0;
    int min_indent = std::numeric_limits<int>::max();
    for (const auto& line : hunk.lines) {
      if (line.kind != LineKind::removed) {
        first_new = first_new == 0 ? line.new_line : first_new;
        last_new = line.new_line;
        if (!blank(line.text)) {
          min_indent = std::min(min_indent, indentation(line.text));
        }
      }
    }
    std::pair<int, int> block{0, -1};
    const bool expand = !head_lines_.empty() && !deleted_file && first_new > 0 &&
                        min_indent != std::numeric_limits<int>::max() && min_indent > 0;
    if (expand) {
      block =
          enclosing_block(head_lines_, first_new, last_new, min_indent, options_.max_expand_lines);
      add_context(block.first, first_new - 1);
    }
    const auto header = "@@ -" + std::to_string(hunk.old_start) + "," +
                        std::to_string(hunk.old_count) + " +" + std::to_string(hunk.new_start) +
                        "," + std::to_string(hunk.new_count) + " @@ " + hunk.section + "\n";
    const int first_position =
        *std::find_if(where.begin(), where.end(), [&](int p) { return in_range(p); });
    if (!add(header, first_position, true)) {
      return;
    }
    for (std::size_t i = 0; i < hunk.lines.size(); ++i) {
      if (in_range(where[i]) && !add(render_line(hunk.lines[i]), where[i])) {
        return;
      }
    }
    shown_until_ = std::max(shown_until_, last_new);
    if (expand) {
      add_context(last_new + 1, std::min(block.second, next_hunk_start - 1));
    }
  }

  DiffView finish(std::string_view path) {
    view_.text = std::move(out_);
    if (view_.next_start_line) {
      view_.text += "[... cut to fit; for the rest call get_file_diff with {\"path\": \"" +
                    std::string{path} +
                    "\", \"start_line\": " + std::to_string(*view_.next_start_line) + "} ...]\n";
    }
    return std::move(view_);
  }

 private:
  const DiffViewOptions& options_;
  int end_line_;
  std::vector<std::string_view> head_lines_;
  std::string out_;
  int lines_added_ = 0;
  int shown_until_ = 0;
  DiffView view_;
};

}  // namespace

DiffView render_file_diff(const github::FileDiff& file, const DiffViewOptions& options,
                          const std::string* head) {
  Renderer renderer{options, head};
  for (std::size_t i = 0; i < file.hunks.size(); ++i) {
    const int next_start =
        i + 1 < file.hunks.size() ? file.hunks[i + 1].new_start : std::numeric_limits<int>::max();
    renderer.add_hunk(file.hunks[i], file.is_deleted, next_start);
  }
  return renderer.finish(file.path());
}

}  // namespace llmgw::review
