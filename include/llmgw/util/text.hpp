#pragma once

// Small string helpers shared by the diff parser, the review tools and the retry policy.

#include <string>
#include <string_view>
#include <vector>

namespace llmgw::util {

// Splits on '\n'. A trailing '\r' is dropped from each line (CRLF text), and a final '\n' does not
// make an extra empty line: "a\r\nb\n" -> {"a", "b"}. The views point into `text`.
std::vector<std::string_view> split_lines(std::string_view text);

// `text` without leading and trailing spaces and tabs.
std::string_view trim(std::string_view text) noexcept;

// `text` with every invalid UTF-8 sequence replaced by U+FFFD, so that it can go into JSON
// (nlohmann::json refuses to serialise invalid UTF-8). File contents and model output are not
// guaranteed to be valid.
std::string valid_utf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not split a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) noexcept;

}  // namespace llmgw::util
