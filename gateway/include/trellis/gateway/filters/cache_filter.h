// Two-level response cache for GET routes that opt in (config `cache.routes`): L1 in process
// (LRU, bounded in bytes) and L2 in Redis (shared by replicas), TTL per route, strong ETags with
// If-None-Match → 304, Cache-Control (private for per-user data), X-Cache: HIT|MISS|BYPASS,
// request coalescing (concurrent misses on one key make one upstream call). A successful write
// named in `invalidated_by` bumps the (route, user) generation in Redis before its response is
// sent, so replicas stop serving the old data as soon as Redis' invalidation reaches them (see
// tracked_keys.h for how soon). Generations are read through the tracked
// local copies (tracked_keys.h): an L1 hit whose generation is held needs no Redis round trip.
// Redis unreachable: the cache is bypassed.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "trellis/common/metrics.h"
#include "trellis/gateway/exchange.h"
#include "trellis/gateway/response_cache.h"

namespace trellis::gateway {

class RedisClient;
class TrackedKeys;
struct RedisResult;

class CacheFilter final : public Filter {
 public:
  CacheFilter(CacheSettings settings, RedisClient& redis, TrackedKeys& tracked,
              metrics::Registry& registry);
  std::string_view name() const override { return "cache"; }
  void on_request(const ExchangePtr& exchange) override;
  void on_response(Exchange& exchange) override;

 private:
  const CacheRoute* cached_route(const std::string& route_template) const;
  void lookup(const ExchangePtr& exchange, const CacheRoute& route);
  // With the current generation and the L2 entry (when read): hit, or miss (leader or waiter).
  void resolve(const ExchangePtr& exchange, const CacheRoute& route, const std::string& entry_key,
               const RedisResult& result);
  void serve(const ExchangePtr& exchange, const CacheRoute& route, const CacheEntry& entry,
             std::string_view result);
  void register_invalidation(const ExchangePtr& exchange, const std::string& route_template);

  CacheSettings settings_;
  RedisClient& redis_;
  TrackedKeys& tracked_;
  LruCache l1_;
  std::mutex leaders_mutex_;
  // entry key → requests waiting for the leader's answer (coalescing)
  std::map<std::string, std::vector<ExchangePtr>> waiting_;
  metrics::Family<metrics::Counter>& requests_;
  metrics::Gauge& l1_bytes_;
  metrics::Counter& l1_evictions_;
  void store_l1(const std::string& key, const CacheEntry& entry);
  // L1's entry for `key` if it belongs to `generation` and has not expired at `now` (ms).
  std::shared_ptr<const CacheEntry> fresh_l1(const std::string& key, const std::string& generation,
                                             int64_t now);
  // gateway_cache_requests_total's children of one route, resolved once (no label lookups per
  // request); indexed like settings_.routes.
  struct RouteCounters {
    metrics::Counter *hit_l1, *hit_l2, *miss, *coalesced;
  };
  const RouteCounters& counters(const CacheRoute& route) const {
    return route_counters_[static_cast<size_t>(&route - settings_.routes.data())];
  }
  std::vector<RouteCounters> route_counters_;
};

}  // namespace trellis::gateway
