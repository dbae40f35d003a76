// Local copies of the small Redis keys that nearly every request reads — access-token revocation
// markers and response-cache generations — so that a cache hit needs no Redis round trip.
//
// They are kept current by Redis' server-assisted client-side caching: a subscriber connection
// turns on CLIENT TRACKING in broadcast mode for the keys' prefixes, redirected to itself, and
// Redis sends it the name of every such key that changes (written, deleted, expired, evicted;
// FLUSHALL). A copy is used only while that connection is subscribed and a heartbeat, published
// through the ordinary connection every `heartbeat_ms`, came back within 3 heartbeats: otherwise
// every lookup goes to Redis as before. Heartbeats carry their send time and queue behind the
// invalidations on the subscriber connection, so the copies are never older than 3 × heartbeat_ms,
// whether that connection went silent or lags. Redis sends a change's invalidation in the same
// event-loop turn as its reply to the writer, so in practice every gateway has it before the
// writer's client can ask again — but not strictly: a gateway may answer a request it is handling
// at that very moment from its copy. A subscriber that stays connected while its heartbeats reach
// nobody (e.g. left on a demoted server after a failover) is reconnected after 3 of them.
//
// A read from Redis is remembered only if no invalidation of its keys arrived while it was in
// flight (the invalidation may overtake the reply on the other connection). Keys changed by this
// process (cache generations bumped by writes through it, `invalidated_by`) are forgotten as soon
// as the write is acknowledged, so its own next request does not wait for the message.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "trellis/common/metrics.h"
#include "trellis/gateway/redis_client.h"

namespace boost::asio {
class io_context;
}

namespace trellis::gateway {

struct TrackedKeysOptions {
  size_t max_keys = 100000;           // copies held (least recently used dropped first); 0: off
  int heartbeat_ms = 500;             // copies unused when no heartbeat came back for 3 × this
  std::vector<std::string> prefixes;  // only keys starting with one of these are kept
  std::string client_name = "trellis-gateway-tracking";  // of the subscriber (CLIENT LIST)
};

class TrackedKeys {
 public:
  using Values = std::vector<std::optional<std::string>>;  // nullopt: no such key
  using Clock = std::chrono::steady_clock;

  // `reader` is the gateway's ordinary Redis connection (reads and heartbeats); `redis` are the
  // options for the subscriber connection this opens.
  TrackedKeys(boost::asio::io_context& io, const RedisOptions& redis,
              std::shared_ptr<RedisClient> reader, TrackedKeysOptions options,
              metrics::Registry& registry);
  ~TrackedKeys();
  TrackedKeys(const TrackedKeys&) = delete;
  TrackedKeys& operator=(const TrackedKeys&) = delete;

  void start();
  void stop();

  // Every key's value when all of them are held and the copies are current; nullopt otherwise.
  std::optional<Values> lookup(std::span<const std::string> keys);
  std::optional<Values> lookup(std::initializer_list<std::string> keys) {
    return lookup(std::span(keys.begin(), keys.size()));
  }
  // MGET of `keys`; the replies for keys under the tracked prefixes are kept (see above), the
  // others only passed on. `done` gets the reply as is, on an io thread.
  void read(std::vector<std::string> keys, std::function<void(RedisResult)> done);
  // This process changed `key` and Redis acknowledged it.
  void forget(const std::string& key);

  // Driven by the subscriber connection (public for tests).
  void on_subscribed(bool subscribed);
  void on_message(const std::string& channel, const RedisReply& payload);
  const std::string& heartbeat_channel() const { return heartbeat_channel_; }
  static std::string heartbeat_payload();  // a heartbeat sent now
  // PUBLISH's answer: how many subscribers got the heartbeat (0 three times in a row while
  // subscribed: the subscriber is reconnected).
  void on_heartbeat_published(long long receivers);
  bool current();  // the copies may be used now

 private:
  struct Entry {
    std::optional<std::string> value;
    std::list<std::string>::iterator recency;
  };
  struct InFlight {
    uint32_t reads = 0;
    uint64_t invalidated_at = 0;  // sequence_ of the last invalidation seen during the reads
  };
  struct Timer;
  struct Link;  // how callbacks reach this object, or learn that it is gone

  bool kept(const std::string& key) const;
  bool current_locked(Clock::time_point now) const;
  void invalidate_locked(const std::string& key);
  void clear_locked();
  void store_locked(const std::string& key, std::optional<std::string> value);
  void heartbeat();  // under link_->mutex
  void publish_heartbeat();

  TrackedKeysOptions options_;
  std::shared_ptr<RedisClient> reader_;
  std::shared_ptr<RedisClient> subscriber_;
  std::unique_ptr<Timer> timer_;
  std::shared_ptr<Link> link_;
  std::string heartbeat_channel_;
  std::chrono::milliseconds max_silence_;

  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> recency_;  // most recently used first
  std::unordered_map<std::string, InFlight> in_flight_;
  uint64_t sequence_ = 0;  // counts invalidations of keys being read
  uint64_t epoch_ = 0;     // bumped when every copy is dropped (connection change, flush, gap)
  bool subscribed_ = false;
  std::optional<Clock::time_point> last_heartbeat_;  // send time of the newest one back
  int unheard_heartbeats_ = 0;  // published in a row while subscribed, received by nobody
  bool was_current_ = false;    // at the last heartbeat tick, for logging changes
  bool stopped_ = false;        // under link_->mutex

  metrics::Family<metrics::Counter>& lookups_;
  metrics::Counter& hits_;
  metrics::Counter& misses_;
  metrics::Gauge& held_;
  metrics::Gauge& current_gauge_;
};

}  // namespace trellis::gateway
