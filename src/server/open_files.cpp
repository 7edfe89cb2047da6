// The gateway's open-files budget (open_files.hpp).

#include "open_files.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <boost/system/errc.hpp>
#include <limits>

namespace llmgw::server::detail {

std::size_t pooled_descriptors(const config::GatewayConfig& config, std::size_t workers) {
  return workers * config.nodes.size() * config.limits.max_idle_upstream_per_node;
}

std::size_t descriptors_needed(const config::GatewayConfig& config, std::size_t workers) {
  return 2 * config.limits.max_connections + pooled_descriptors(config, workers) +
         kReservedDescriptors;
}

OpenFilesLimit raise_open_files_limit(std::size_t needed) {
  const auto to_size = [](rlim_t value) {
    return value == RLIM_INFINITY ? std::numeric_limits<std::size_t>::max()
                                  : static_cast<std::size_t>(value);
  };
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return {};
  }
  OpenFilesLimit result{to_size(limit.rlim_cur), to_size(limit.rlim_max)};
  if (result.soft >= needed) {
    return result;
  }
  limit.rlim_cur = static_cast<rlim_t>(std::min(needed, result.hard));
  if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    result.soft = to_size(limit.rlim_cur);
  }
  return result;
}

std::size_t connection_capacity(const config::GatewayConfig& config, std::size_t workers,
                                std::size_t soft_limit) {
  // Idle pooled connections are what earlier client connections left behind, so the pools never
  // need their full configured size when connections are scarce: they get at most a third of what
  // the reserve leaves (a connect that still finds no descriptor is answered 503 by the gateway,
  // never charged to the node).
  const std::size_t room =
      soft_limit > kReservedDescriptors ? soft_limit - kReservedDescriptors : 0;
  const std::size_t pools = std::min(pooled_descriptors(config, workers), room / 3);
  return std::clamp<std::size_t>((room - pools) / 2, 1, config.limits.max_connections);
}

bool is_local_resource_error(const boost::system::error_code& ec) noexcept {
  using boost::system::errc::errc_t;
  for (const auto code :
       {errc_t::too_many_files_open, errc_t::too_many_files_open_in_system, errc_t::no_buffer_space,
        errc_t::not_enough_memory, errc_t::address_not_available}) {
    if (ec == boost::system::errc::make_error_code(code)) {
      return true;
    }
  }
  return false;
}

}  // namespace llmgw::server::detail
