#include "llmgw/admission/admission_queue.hpp"

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>

#include "llmgw/util/text.hpp"

namespace llmgw::admission {

std::string_view to_string(Priority priority) noexcept {
  return priority == Priority::batch ? "batch" : "interactive";
}

std::optional<Priority> parse_priority(std::string_view value) noexcept {
  const std::string_view word = util::trim(value);
  if (boost::algorithm::iequals(word, "interactive")) {
    return Priority::interactive;
  }
  if (boost::algorithm::iequals(word, "batch")) {
    return Priority::batch;
  }
  return std::nullopt;
}

std::string_view accepted_priorities() noexcept {
  return "interactive, batch";
}

void AdmissionQueue::push(QueuedRequest request) {
  queue(request.priority).push_back(std::move(request));
}

bool AdmissionQueue::remove(std::uint64_t ticket) {
  for (auto& waiting : queues_) {
    const auto it = std::find_if(waiting.begin(), waiting.end(),
                                 [ticket](const QueuedRequest& r) { return r.ticket == ticket; });
    if (it != waiting.end()) {
      waiting.erase(it);
      return true;
    }
  }
  return false;
}

std::optional<QueuedRequest> AdmissionQueue::pop_next(Clock::time_point now, const Fits& fits) {
  auto& interactive = queue(Priority::interactive);
  auto& batch = queue(Priority::batch);
  const auto first_fitting = [&fits](std::deque<QueuedRequest>& waiting) {
    return std::find_if(waiting.begin(), waiting.end(),
                        [&fits](const QueuedRequest& r) { return !fits || fits(r); });
  };
  const auto i = first_fitting(interactive);
  const auto b = first_fitting(batch);
  const bool have_interactive = i != interactive.end();
  const bool have_batch = b != batch.end();
  if (!have_interactive && !have_batch) {
    return std::nullopt;
  }
  // Aged: the batch request has waited batch_aging; it then competes by arrival time.
  const bool batch_goes =
      have_batch &&
      (!have_interactive || (now - b->arrived >= batch_aging_ && b->arrived < i->arrived));
  auto& from = batch_goes ? batch : interactive;
  const auto it = batch_goes ? b : i;
  QueuedRequest next = std::move(*it);
  from.erase(it);
  return next;
}

}  // namespace llmgw::admission
