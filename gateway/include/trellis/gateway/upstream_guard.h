// Protection of one upstream: a circuit breaker (fail fast while it is down, probe it back), a
// bound on in-flight requests (shed load at once instead of queueing without bound) and a retry
// budget (retries add at most `retry_budget_ratio` extra load). Thread-safe; no I/O.
#pragma once

#include <cstdint>
#include <mutex>

namespace trellis::gateway {

struct UpstreamPolicy {
  int max_in_flight = 1000;         // requests to this upstream at once; more get 503 at once
  int max_retries = 2;              // idempotent (GET) calls, UNAVAILABLE only, within deadline
  int retry_backoff_ms = 25;        // first backoff; doubles, with full jitter
  double retry_budget_ratio = 0.2;  // retries may add at most 20 % to the request rate
  int breaker_failures = 5;         // consecutive UNAVAILABLE/DEADLINE_EXCEEDED that open it
  int breaker_open_ms = 5000;       // then fail fast this long before one probe is let through
};

enum class CircuitState { kClosed = 0, kHalfOpen = 1, kOpen = 2 };

class UpstreamGuard {
 public:
  explicit UpstreamGuard(UpstreamPolicy policy) : policy_(policy) {}

  enum class Admission { kAdmitted, kCircuitOpen, kOverloaded };
  // On kAdmitted the caller must call finish() exactly once.
  Admission admit(int64_t now_ms, int64_t& retry_after_ms);
  // The outcome of the request (its last attempt): `failed` when the upstream was unreachable.
  void finish(bool failed, int64_t now_ms);
  // An attempt failed with UNAVAILABLE: may it be retried? Consumes budget when yes.
  bool take_retry();

  CircuitState state(int64_t now_ms);
  int in_flight();
  const UpstreamPolicy& policy() const { return policy_; }

 private:
  UpstreamPolicy policy_;
  std::mutex mutex_;
  CircuitState state_ = CircuitState::kClosed;
  int consecutive_failures_ = 0;
  int64_t open_until_ms_ = 0;
  bool probe_in_flight_ = false;
  int in_flight_ = 0;
  double retry_tokens_ = 10;  // a small initial allowance so that a quiet service can retry too
};

}  // namespace trellis::gateway
