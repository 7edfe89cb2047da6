#include "llmgw/admission/interactive_reserve.hpp"

#include <algorithm>

namespace llmgw::admission {

InteractiveReserve::InteractiveReserve(std::size_t per_session, Clock::duration window,
                                       Clock::time_point start)
    : per_session_(per_session), window_(window), start_(start) {}

void InteractiveReserve::configure(std::size_t per_session, Clock::duration window) noexcept {
  per_session_ = per_session;
  window_ = window;
}

void InteractiveReserve::touch(std::uint64_t session, Clock::time_point now) {
  const auto it = seen_.find(session);
  if (it == seen_.end()) {
    order_.push_back(session);
    seen_.emplace(session, Seen{now, std::prev(order_.end())});
    return;
  }
  it->second.last = now;
  order_.splice(order_.end(), order_, it->second.order);
}

void InteractiveReserve::expire(Clock::time_point now) {
  while (!order_.empty()) {
    const auto it = seen_.find(order_.front());
    if (now - it->second.last < window_) {
      break;
    }
    seen_.erase(it);
    order_.pop_front();
  }
}

std::size_t InteractiveReserve::active_sessions(Clock::time_point now) {
  expire(now);
  return seen_.size();
}

std::size_t InteractiveReserve::reserved(std::size_t cap, Clock::time_point now) {
  if (cap == 0 || per_session_ == 0) {
    return 0;
  }
  const bool start_hold = now - start_ < window_;
  const std::size_t sessions = std::max<std::size_t>(active_sessions(now), start_hold ? 1 : 0);
  // Saturating: per_session × sessions may exceed cap for a small cap and many sessions.
  const std::size_t wanted =
      sessions > (cap - 1) / per_session_ ? cap - 1 : per_session_ * sessions;
  return std::min(wanted, cap - 1);
}

}  // namespace llmgw::admission
