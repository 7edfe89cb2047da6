#pragma once

// The completion token of the gateway's coroutines: outcomes come back as values
// (`auto [ec, n] = co_await op(..., kAsTuple)`), one branch for each expected one.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace llmgw::server::detail {

inline constexpr auto kAsTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace llmgw::server::detail
