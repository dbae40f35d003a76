// Rate-limit policies and the GCRA arithmetic shared by the Redis script (exact across replicas)
// and the local fallback limiter (per replica, used while Redis is unreachable).
//
// A policy allows at most `limit` requests in any window of `window_s` seconds per key, of which
// up to `burst` may arrive at once; the sustained rate is (limit - burst + 1) per window.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace trellis::gateway {

enum class RateLimitKey { kClientIp, kUser, kApiKey };

struct RateLimitPolicy {
  std::string name;  // appears in RateLimit headers and metrics
  RateLimitKey key = RateLimitKey::kClientIp;
  int64_t limit = 100;
  int64_t window_s = 60;
  int64_t burst = 1;
  // Route templates ("/v1/orders/{id}"), prefixes ending in '*' ("/v1/auth/*"), or "*" for all.
  std::vector<std::string> routes = {"*"};

  bool applies_to(const std::string& route_template) const;
  // GCRA parameters in microseconds.
  int64_t emission_interval_us() const;
  int64_t tolerance_us() const;
};

struct RateLimitSettings {
  std::vector<RateLimitPolicy> policies;
  std::vector<std::string> trusted_proxies;  // peers whose X-Forwarded-For is believed
  int replicas = 1;  // the local fallback allows limit / replicas per replica
};

struct RateLimitDecision {
  bool allowed = true;
  int64_t remaining = 0;       // requests that would still be admitted now
  int64_t reset_ms = 0;        // until the full quota is available again
  int64_t retry_after_ms = 0;  // when refused: until the next request would be admitted
};

// One GCRA step: `tat` is the stored theoretical arrival time (0 = none); returns the decision
// and updates `tat` when the request is admitted.
RateLimitDecision gcra(int64_t& tat, int64_t now_us, int64_t emission_interval_us,
                       int64_t tolerance_us);

// The same step as an atomic Redis script over KEYS[1] with ARGV = {T_us, tau_us}, using the
// Redis server's clock so that replicas with skewed clocks agree. Returns
// {allowed, remaining, reset_ms, retry_after_ms}.
const std::string& gcra_script();
const std::string& gcra_script_sha1();

// Per-replica limiter used while Redis is unreachable; bounded in keys (oldest evicted).
class LocalRateLimiter {
 public:
  explicit LocalRateLimiter(size_t max_keys = 100000) : max_keys_(max_keys) {}
  RateLimitDecision decide(const std::string& key, int64_t now_us, int64_t emission_interval_us,
                           int64_t tolerance_us);

 private:
  size_t max_keys_;
  std::mutex mutex_;
  std::unordered_map<std::string, int64_t> tat_;
};

// The client address: the peer, or — only when the peer is a trusted proxy — the right-most
// X-Forwarded-For entry that is not itself a trusted proxy.
class ClientAddressResolver {
 public:
  // CIDRs like "10.0.0.0/8", "127.0.0.1/32", "::1/128"; throws std::invalid_argument.
  explicit ClientAddressResolver(const std::vector<std::string>& trusted_proxies);
  std::string resolve(const std::string& peer, std::string_view forwarded_for) const;
  bool is_trusted(const std::string& address) const;

 private:
  struct Network {
    int family;
    unsigned char bytes[16];
    int prefix;
  };
  std::vector<Network> trusted_;
};

}  // namespace trellis::gateway
