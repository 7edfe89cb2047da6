// Fuzz target: unified diff text (as GitHub serves it, or a files-API "patch") -> the diff parser
// and the map of commentable lines built from it. The review agent feeds both with text from the
// network and line numbers from a model, so any input must parse without UB and every line the
// map offers must be one the file says it can comment on.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llmgw/github/diff.hpp"

namespace {

using llmgw::github::CommentableLines;
using llmgw::github::FileDiff;
using llmgw::github::Side;

void check_file(const FileDiff& file, const CommentableLines& lines) {
  for (const auto& hunk : file.hunks) {
    for (const auto& line : hunk.lines) {
      for (const Side side : {Side::left, Side::right}) {
        // A line number a model might ask for: near a real one, or far outside.
        for (const int probe : {line.old_line, line.new_line, -line.new_line}) {
          const auto nearest = lines.nearest(file.path(), probe, side);
          if (nearest && !lines.contains(file.path(), *nearest, side)) {
            __builtin_trap();
          }
        }
      }
    }
  }
  (void)lines.describe(file.path());
  (void)file.to_patch();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto files = llmgw::github::parse_unified_diff(text);
  const CommentableLines lines{files};
  for (const auto& file : files) {
    check_file(file, lines);
  }
  const auto patch = llmgw::github::parse_file_patch("fuzz.cpp", text);
  check_file(patch, CommentableLines{{patch}});
  return 0;
}
