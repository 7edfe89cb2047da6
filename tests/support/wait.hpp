#pragma once

// Bounded waiting for tests: every wait has a deadline and reports what it waited for.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace llmgw::testing {

// How long a test waits for a child process to reach a state (a log line, a port, an exit): long
// enough for an ASan build on a loaded machine.
inline constexpr std::chrono::milliseconds kWait{20'000};

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
// Returns true when it held; tests wrap it as ASSERT_TRUE(wait_until(...)) << "what".
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds{10});

// A port free on 127.0.0.1 now (the kernel's pick for port 0), for a server the test starts right
// after; `udp` asks for a UDP port (a DNS server), else TCP. Throws std::runtime_error.
std::uint16_t free_loopback_port(bool udp = false);

// A fresh, empty temporary directory unique to this process and call.
std::string make_temp_dir(const std::string& prefix);

}  // namespace llmgw::testing
