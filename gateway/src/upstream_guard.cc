#include "trellis/gateway/upstream_guard.h"

#include <algorithm>

namespace trellis::gateway {

UpstreamGuard::Admission UpstreamGuard::admit(int64_t now_ms, int64_t& retry_after_ms) {
  std::lock_guard lock(mutex_);
  if (state_ == CircuitState::kOpen && now_ms >= open_until_ms_) state_ = CircuitState::kHalfOpen;
  if (state_ == CircuitState::kOpen || (state_ == CircuitState::kHalfOpen && probe_in_flight_)) {
    retry_after_ms = std::max<int64_t>(open_until_ms_ - now_ms, 1000);
    return Admission::kCircuitOpen;
  }
  if (in_flight_ >= policy_.max_in_flight) {
    retry_after_ms = 1000;
    return Admission::kOverloaded;
  }
  if (state_ == CircuitState::kHalfOpen) probe_in_flight_ = true;
  ++in_flight_;
  // Every admitted request earns a fraction of a retry.
  retry_tokens_ = std::min(retry_tokens_ + policy_.retry_budget_ratio, 100.0);
  return Admission::kAdmitted;
}

void UpstreamGuard::finish(bool failed, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  --in_flight_;
  bool probe = state_ == CircuitState::kHalfOpen && probe_in_flight_;
  if (probe) probe_in_flight_ = false;
  if (!failed) {
    consecutive_failures_ = 0;
    if (probe) state_ = CircuitState::kClosed;
    return;
  }
  ++consecutive_failures_;
  if (probe || consecutive_failures_ >= policy_.breaker_failures) {
    state_ = CircuitState::kOpen;
    open_until_ms_ = now_ms + policy_.breaker_open_ms;
  }
}

bool UpstreamGuard::take_retry() {
  std::lock_guard lock(mutex_);
  if (retry_tokens_ < 1) return false;
  retry_tokens_ -= 1;
  return true;
}

CircuitState UpstreamGuard::state(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (state_ == CircuitState::kOpen && now_ms >= open_until_ms_) return CircuitState::kHalfOpen;
  return state_;
}

int UpstreamGuard::in_flight() {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

}  // namespace trellis::gateway
