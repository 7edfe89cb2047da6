#pragma once

// The emulator's Anthropic Messages API shapes (POST /v1/messages, which Ollama serves since 0.14
// through its middleware over /api/chat): the response object, the SSE event stream and the error
// object. Pure functions over strings, like protocol.hpp.
//
// A streamed reply is, in order:
//   event: message_start        {"type":"message_start","message":{..."content":[],"usage":{...}}}
//   event: content_block_start
//   {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}} event:
//   content_block_delta
//   {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"..."}}  (per
//   token) event: content_block_stop   {"type":"content_block_stop","index":0} event: message_delta
//   {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{...}} event: message_stop
//   {"type":"message_stop"}

#include <string>
#include <string_view>

#include "llmgw/sim/protocol.hpp"

namespace llmgw::sim {

// {"type":"error","error":{"type":...,"message":...},"request_id":...} with the type Ollama's
// anthropic.NewError derives from the status.
std::string anthropic_error(int status, std::string_view message, std::string_view request_id);

// "end_turn", or "max_tokens" when max_tokens cut the reply.
std::string_view anthropic_stop_reason(const FinalStats& stats) noexcept;

// message_start and content_block_start.
std::string anthropic_stream_start(std::string_view id, std::string_view model,
                                   std::size_t input_tokens);
std::string anthropic_stream_delta(std::string_view piece);
// content_block_stop, message_delta (stop reason and usage) and message_stop.
std::string anthropic_stream_end(const FinalStats& stats);
// The error event a stream ends with when generation fails midway.
std::string anthropic_stream_error(std::string_view message);

// The whole "message" object of a non-streamed reply.
std::string anthropic_response(std::string_view id, std::string_view model, std::string_view text,
                               const FinalStats& stats);

}  // namespace llmgw::sim
