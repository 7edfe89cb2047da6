#pragma once

// Small string helpers shared by the diff parser, the review tools and the retry policy.

#include <string_view>
#include <vector>

namespace llmgw::util {

// Splits on '\n'. A trailing '\r' is dropped from each line (CRLF text), and a final '\n' does not
// make an extra empty line: "a\r\nb\n" -> {"a", "b"}. The views point into `text`.
std::vector<std::string_view> split_lines(std::string_view text);

// `text` without leading and trailing spaces and tabs.
std::string_view trim(std::string_view text) noexcept;

}  // namespace llmgw::util
