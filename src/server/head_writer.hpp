#pragma once

// Internal: the heads the proxy path sends, written as one flat buffer (gather_write.hpp sends
// them).
//
// Why not Beast's serializer: a serialized head is one buffer per field inside nested
// buffers_cat_view / buffers_prefix_view / buffers_suffix iterators; walking them cost ~7,000
// instructions per head on a proxied short request (callgrind, bench/RESULTS.md §12.2, §12.8),
// and the socket got ~15-30 iovecs per sendmsg. The fields themselves are still Beast's: the
// client's request and the node's response were parsed and checked by Beast's parsers, and the
// lines here are their name and value as parsed (RFC 9112 §5: field-name ":" SP field-value CRLF).
//
// Thread safety: none needed; pure functions.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace llmgw::server::detail {

// Appends `name: value\r\n`.
void append_field(std::string& out, std::string_view name, std::string_view value);

// Appends "HTTP/1.1 <code> <reason>\r\n" (the reason Beast gives the code; an unknown code gets
// "<unknown-status>", as Beast's serializer writes it).
void append_status_line(std::string& out, unsigned code);

// Ends a head: the empty line.
inline void end_head(std::string& out) {
  out.append("\r\n");
}

// The framing of one piece of a chunked body: "<size in hex>\r\n" before it. Returns the bytes
// used in `out` (at most 18).
std::size_t chunk_size_line(std::size_t size, std::span<char, 18> out) noexcept;
inline constexpr std::string_view kChunkEnd = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace llmgw::server::detail
