#pragma once

// The completion handler's half of co_spawn: a coroutine that ended by an exception is logged, with
// what it was, instead of being lost (Asio passes the exception_ptr; nothing else would see it).

#include <exception>
#include <string_view>

namespace llmgw::util {

// Logs "<what> ended by an exception: <message>" at error level; does nothing for a null `error`.
void log_exception(std::string_view what, const std::exception_ptr& error) noexcept;

}  // namespace llmgw::util
