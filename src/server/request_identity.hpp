#pragma once

// Internal: every request's identity. X-Request-ID is taken from the client when it is a sane
// token, else generated; W3C Trace Context's traceparent keeps the client's trace id (or starts a
// trace) with a new parent id for the gateway's hop. Both are sent to the node, X-Request-ID is
// returned to the client, and the access log carries both. Pure functions over header values.

#include <string>
#include <string_view>

namespace llmgw::server::detail {

inline constexpr std::string_view kRequestIdHeader = "X-Request-ID";

struct RequestIdentity {
  std::string request_id;   // X-Request-ID, sent to the node and returned to the client
  std::string traceparent;  // "00-<trace id>-<span id>-<flags>", sent to the node
  std::string trace_id;     // 32 lowercase hex digits
  std::string span_id;      // 16 lowercase hex digits: the gateway's hop
};

// From the client's X-Request-ID and traceparent values ("" when absent).
RequestIdentity identify(std::string_view request_id, std::string_view traceparent);

// 1 to 200 visible ASCII characters (no spaces, quotes or backslashes): what a log line and a
// header can carry as they are.
bool valid_request_id(std::string_view value) noexcept;

// The trace id and flags of a valid traceparent (W3C Trace Context level 1: version 00 exactly,
// a later version's first four fields), or empty strings.
struct TraceParent {
  std::string trace_id;
  std::string flags;
};
TraceParent parse_traceparent(std::string_view value);

}  // namespace llmgw::server::detail
