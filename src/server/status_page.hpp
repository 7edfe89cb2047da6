#pragma once

// Internal: the HTML of GET /status (src/server/status_page.html, embedded at build time by
// cmake/EmbedText.cmake into a generated source).

#include <string_view>

namespace llmgw::server::detail {

std::string_view status_page_html() noexcept;

}  // namespace llmgw::server::detail
