#include "support/wait.hpp"

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

namespace llmgw::testing {

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return condition();
}

std::string make_temp_dir(const std::string& prefix) {
  const auto pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + pattern);
  }
  return std::string{buffer.data()};
}

}  // namespace llmgw::testing
