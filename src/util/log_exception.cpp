#include "llmgw/util/log_exception.hpp"

#include <spdlog/spdlog.h>

namespace llmgw::util {

void log_exception(std::string_view what, const std::exception_ptr& error) noexcept {
  if (!error) {
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("{} ended by an exception: {}", what, e.what());
  } catch (...) {
    spdlog::error("{} ended by an unknown exception", what);
  }
}

}  // namespace llmgw::util
