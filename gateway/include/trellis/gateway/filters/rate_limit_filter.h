// Distributed rate limiting: one atomic GCRA script per policy and request in Redis (pipelined
// on the shared connection), every applicable policy checked, IETF draft RateLimit-Policy /
// RateLimit headers on every limited response, 429 + Retry-After when any policy refuses. While
// Redis is unreachable each replica limits locally at limit / replicas, and switches back by
// itself when Redis returns. Two instances run: before auth (client IP and API-key policies, so
// that credential guessing is limited too) and after auth (per-user policies).
#pragma once

#include <atomic>
#include <memory>

#include "trellis/common/metrics.h"
#include "trellis/gateway/exchange.h"
#include "trellis/gateway/rate_limit.h"

namespace trellis::gateway {

class RedisClient;
class Readiness;

// What both instances share: the fallback limiter and the current mode.
class RateLimitState {
 public:
  RateLimitState(RateLimitSettings settings, RedisClient& redis, Readiness& readiness,
                 metrics::Registry& registry);
  const RateLimitSettings& settings() const { return settings_; }
  const ClientAddressResolver& addresses() const { return addresses_; }
  RedisClient& redis() { return redis_; }
  LocalRateLimiter& local() { return local_; }
  // Records the mode used for a decision; logs and updates /readyz detail on a change.
  void note_mode(bool shared);
  void count(const std::string& policy, bool allowed, bool shared);

 private:
  RateLimitSettings settings_;
  ClientAddressResolver addresses_;
  RedisClient& redis_;
  Readiness& readiness_;
  LocalRateLimiter local_;
  std::atomic<int> mode_{-1};  // -1 unknown, 0 local, 1 shared
  metrics::Family<metrics::Counter>& decisions_;
  metrics::Gauge& mode_gauge_;
};

enum class RateLimitStage { kBeforeAuth, kAfterAuth };

class RateLimitFilter final : public Filter {
 public:
  RateLimitFilter(RateLimitStage stage, std::shared_ptr<RateLimitState> state);
  std::string_view name() const override {
    return stage_ == RateLimitStage::kBeforeAuth ? "rate_limit_ip" : "rate_limit_user";
  }
  void on_request(const ExchangePtr& exchange) override;
  void on_response(Exchange& exchange) override;

 private:
  void check(const ExchangePtr& exchange);  // once the revocation hold, if any, passed
  RateLimitStage stage_;
  std::shared_ptr<RateLimitState> state_;
};

}  // namespace trellis::gateway
