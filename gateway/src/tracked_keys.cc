#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include "trellis/gateway/tracked_keys.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>

#include "trellis/common/log.h"
#include "trellis/common/trace.h"

namespace trellis::gateway {

namespace asio = boost::asio;

constexpr int kHeartbeatsMissedBeforeStale = 3;

struct TrackedKeys::Timer {
  explicit Timer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

struct TrackedKeys::Link {
  std::mutex mutex;
  TrackedKeys* owner = nullptr;  // null once the object is being destroyed
  // Runs `body(owner)` unless the object is gone.
  template <class Body>
  void with_owner(Body&& body) {
    std::lock_guard lock(mutex);
    if (owner != nullptr) body(*owner);
  }
};

TrackedKeys::TrackedKeys(asio::io_context& io, const RedisOptions& redis,
                         std::shared_ptr<RedisClient> reader, TrackedKeysOptions options,
                         metrics::Registry& registry)
    : options_(std::move(options)),
      reader_(std::move(reader)),
      timer_(std::make_unique<Timer>(io)),
      link_(std::make_shared<Link>()),
      heartbeat_channel_("trellis:tracking:heartbeat:" + trace::random_id_hex(8)),
      max_silence_(options_.heartbeat_ms * kHeartbeatsMissedBeforeStale),
      lookups_(registry.counter("gateway_redis_tracked_lookups_total",
                                "Lookups of revocation markers and cache generations by result "
                                "(hit: answered from the local copies, miss: read from Redis)",
                                {"result"})),
      hits_(lookups_.with({"hit"})),
      misses_(lookups_.with({"miss"})),
      held_(
          registry.gauge("gateway_redis_tracked_keys", "Redis keys held as local copies").with({})),
      current_gauge_(registry
                         .gauge("gateway_redis_tracking_current",
                                "1 while the local copies of Redis keys are kept current")
                         .with({})) {
  link_->owner = this;
  if (options_.max_keys == 0) return;
  RedisSubscription subscription;
  std::vector<std::string> tracking = {
      "CLIENT", "TRACKING", "on", "REDIRECT", RedisSubscription::kClientIdPlaceholder, "BCAST"};
  for (const auto& prefix : options_.prefixes) {
    tracking.push_back("PREFIX");
    tracking.push_back(prefix);
  }
  subscription.setup = {{"CLIENT", "SETNAME", options_.client_name}, std::move(tracking)};
  subscription.channels = {"__redis__:invalidate", heartbeat_channel_};
  subscription.on_subscribed = [link = link_](bool subscribed) {
    link->with_owner([&](TrackedKeys& self) { self.on_subscribed(subscribed); });
  };
  subscription.on_message = [link = link_](const std::string& channel, const RedisReply& payload) {
    link->with_owner([&](TrackedKeys& self) { self.on_message(channel, payload); });
  };
  subscriber_ = RedisClient::create_subscriber(io, redis, std::move(subscription));
}

TrackedKeys::~TrackedKeys() {
  stop();
  std::lock_guard lock(link_->mutex);  // waits for a callback that is running
  link_->owner = nullptr;
}

void TrackedKeys::start() {
  if (!subscriber_) return;
  subscriber_->start();
  std::lock_guard lock(link_->mutex);  // heartbeat() runs under it, like from the timer
  if (!stopped_) heartbeat();
}

void TrackedKeys::stop() {
  if (!subscriber_) return;
  {
    std::lock_guard lock(link_->mutex);
    if (stopped_) return;
    stopped_ = true;
    timer_->timer.cancel();
  }
  subscriber_->stop();
}

bool TrackedKeys::kept(const std::string& key) const {
  if (options_.max_keys == 0) return false;
  for (const auto& prefix : options_.prefixes) {
    if (key.starts_with(prefix)) return true;
  }
  return false;
}

bool TrackedKeys::current_locked(Clock::time_point now) const {
  return subscribed_ && last_heartbeat_ && now - *last_heartbeat_ <= max_silence_;
}

std::string TrackedKeys::heartbeat_payload() {
  return std::to_string(Clock::now().time_since_epoch().count());
}

void TrackedKeys::publish_heartbeat() {
  reader_->command({"PUBLISH", heartbeat_channel_, heartbeat_payload()}, [link = link_](
                                                                             RedisResult result) {
    if (!result.ok || result.reply.type != RedisReply::Type::kInteger) return;
    link->with_owner([&](TrackedKeys& self) { self.on_heartbeat_published(result.reply.integer); });
  });
}

void TrackedKeys::on_heartbeat_published(long long receivers) {
  // Nobody received it although the subscriber says it is subscribed: it is attached to
  // another server than the writes (e.g. left on a demoted one after a failover). A reader
  // that cannot publish says nothing about the subscriber and is not counted.
  bool reconnect = false;
  {
    std::lock_guard lock(mutex_);
    unheard_heartbeats_ = receivers > 0 || !subscribed_ ? 0 : unheard_heartbeats_ + 1;
    reconnect = unheard_heartbeats_ >= kHeartbeatsMissedBeforeStale;
    if (reconnect) unheard_heartbeats_ = 0;
  }
  if (reconnect && subscriber_) {
    log::warn("redis key tracking: heartbeats reach no subscriber, reconnecting it");
    subscriber_->reconnect();
  }
}

bool TrackedKeys::current() {
  std::lock_guard lock(mutex_);
  return current_locked(Clock::now());
}

std::optional<TrackedKeys::Values> TrackedKeys::lookup(std::span<const std::string> keys) {
  std::lock_guard lock(mutex_);
  if (!current_locked(Clock::now())) {
    misses_.inc();
    return std::nullopt;
  }
  Values values;
  values.reserve(keys.size());
  for (const auto& key : keys) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      misses_.inc();
      return std::nullopt;
    }
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    values.push_back(it->second.value);
  }
  hits_.inc();
  return values;
}

void TrackedKeys::read(std::vector<std::string> keys, std::function<void(RedisResult)> done) {
  uint64_t started_sequence = 0, started_epoch = 0;
  {
    std::lock_guard lock(mutex_);
    started_sequence = sequence_;
    started_epoch = epoch_;
    for (const auto& key : keys) {
      if (kept(key)) ++in_flight_[key].reads;
    }
  }
  std::vector<std::string> command;
  command.reserve(keys.size() + 1);
  command.push_back("MGET");
  command.insert(command.end(), keys.begin(), keys.end());
  reader_->command(std::move(command), [link = link_, keys = std::move(keys), started_sequence,
                                        started_epoch, done = std::move(done)](RedisResult result) {
    link->with_owner([&](TrackedKeys& self) {
      const bool usable = result.ok && result.reply.type == RedisReply::Type::kArray &&
                          result.reply.elements.size() == keys.size();
      std::lock_guard lock(self.mutex_);
      const bool same_copies = self.epoch_ == started_epoch && self.current_locked(Clock::now());
      for (size_t i = 0; i < keys.size(); ++i) {
        if (!self.kept(keys[i])) continue;
        auto it = self.in_flight_.find(keys[i]);
        if (it == self.in_flight_.end()) continue;  // not expected: entries live until 0 reads
        const bool untouched = it->second.invalidated_at <= started_sequence;
        if (--it->second.reads == 0) self.in_flight_.erase(it);
        if (!usable || !same_copies || !untouched) continue;
        const auto& element = result.reply.elements[i];
        self.store_locked(keys[i], element.type == RedisReply::Type::kString
                                       ? std::optional<std::string>(element.str)
                                       : std::nullopt);
      }
    });
    done(std::move(result));
  });
}

void TrackedKeys::store_locked(const std::string& key, std::optional<std::string> value) {
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second.value = std::move(value);
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    return;
  }
  while (entries_.size() >= options_.max_keys && !recency_.empty()) {
    entries_.erase(recency_.back());
    recency_.pop_back();
  }
  recency_.push_front(key);
  entries_.emplace(key, Entry{std::move(value), recency_.begin()});
  held_.set(static_cast<int64_t>(entries_.size()));
}

void TrackedKeys::invalidate_locked(const std::string& key) {
  if (auto it = entries_.find(key); it != entries_.end()) {
    recency_.erase(it->second.recency);
    entries_.erase(it);
  }
  if (auto it = in_flight_.find(key); it != in_flight_.end()) {
    it->second.invalidated_at = ++sequence_;
  }
}

void TrackedKeys::clear_locked() {
  entries_.clear();
  recency_.clear();
  ++epoch_;  // reads in flight keep nothing
  held_.set(0);
}

void TrackedKeys::forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  invalidate_locked(key);
  held_.set(static_cast<int64_t>(entries_.size()));
}

void TrackedKeys::on_subscribed(bool subscribed) {
  {
    std::lock_guard lock(mutex_);
    // Whatever was held may have changed while no connection listened.
    clear_locked();
    subscribed_ = subscribed;
    unheard_heartbeats_ = 0;
    last_heartbeat_.reset();  // current again once a heartbeat made the whole trip
    current_gauge_.set(0);
  }
  // Outside the lock: lookups on the I/O threads never wait for a log line.
  if (subscribed) {
    // The first heartbeat now rather than at the next tick: current sooner after a reconnect.
    publish_heartbeat();
    log::info("redis key tracking on", {{"prefixes", options_.prefixes.size()}});
  } else if (!stopped_) {
    log::warn("redis key tracking lost: revocation and cache generations read from redis");
  }
}

void TrackedKeys::on_message(const std::string& channel, const RedisReply& payload) {
  std::lock_guard lock(mutex_);
  if (channel == heartbeat_channel_) {
    // Its payload is when this process published it. Every invalidation Redis emitted for a
    // write it executed before that PUBLISH is ahead of it on this connection (one caveat:
    // broadcast invalidations of writes in the same event-loop turn are sent at the end of the
    // turn, microseconds after the message), so copies are as fresh as the newest heartbeat's
    // send time, whether the connection was silent or is lagging behind.
    Clock::time_point sent;
    try {
      sent = Clock::time_point(Clock::duration(std::stoll(payload.str)));
    } catch (const std::exception&) {
      return;
    }
    auto now = Clock::now();
    // Invalidations of the gap may be missing (a connection that failed unseen): start afresh.
    if (!current_locked(now)) clear_locked();
    if (!last_heartbeat_ || sent > *last_heartbeat_) last_heartbeat_ = sent;
    current_gauge_.set(current_locked(now) ? 1 : 0);
    return;
  }
  if (payload.type == RedisReply::Type::kArray) {
    for (const auto& key : payload.elements) invalidate_locked(key.str);
  } else {
    clear_locked();  // nil: FLUSHALL / FLUSHDB
  }
  held_.set(static_cast<int64_t>(entries_.size()));
}

void TrackedKeys::heartbeat() {
  if (stopped_) return;  // a tick that was already queued when stop() cancelled the timer
  publish_heartbeat();
  bool now_current = false, changed = false;
  {
    std::lock_guard lock(mutex_);
    now_current = current_locked(Clock::now());
    current_gauge_.set(now_current ? 1 : 0);
    changed = subscribed_ && now_current != was_current_;
    was_current_ = now_current;
  }
  if (changed && now_current) {
    log::info("redis key tracking current again");
  } else if (changed) {
    log::warn(
        "redis key tracking heartbeats late: revocation and cache generations read from redis",
        {{"max_silence_ms", max_silence_.count()}});
  }
  timer_->timer.expires_after(std::chrono::milliseconds(options_.heartbeat_ms));
  timer_->timer.async_wait([link = link_](const boost::system::error_code& error) {
    if (error) return;
    link->with_owner([](TrackedKeys& self) { self.heartbeat(); });
  });
}

}  // namespace trellis::gateway
