// Reads order events from the Redis Stream in a consumer group and turns each into a stored
// notification, exactly once in effect:
//   1. XREADGROUP (new entries), or XAUTOCLAIM (entries another consumer took and left idle for
//      claim_idle_ms: it died), or, after a restart or failure, this consumer's own pending ones;
//   2. the notification and its event's (source, event_id) unique key are written in one statement
//      (a redelivery finds the first one and makes none);
//   3. the notifications are pushed to the live streams (see pusher.h);
//   4. XACK only after that: a crash or a failed push before it means redelivery, never loss
//      (the redelivery finds the notification recorded and pushes it again: at least once).
// An entry that fails to process for a reason that cannot go away (a malformed event, data the
// database refuses) stays pending and is retried; at max_deliveries it is copied with the error to
// the dead-letter stream and acknowledged. Unreachable Redis or PostgreSQL is not the entry's
// fault: the consumer backs off and retries, and nothing is dead-lettered for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trellis/common/background_loop.h"
#include "trellis/common/metrics.h"
#include "trellis/notifications/config.h"
#include "trellis/notifications/notification_store.h"
#include "trellis/notifications/pusher.h"
#include "trellis/notifications/redis_connection.h"

namespace trellis::notifications {

struct StreamEntry {
  std::string id;
  std::map<std::string, std::string> fields;  // empty: the entry was trimmed away meanwhile
  int64_t deliveries = 1;
};

struct ConsumeRound {
  size_t entries = 0;        // read, claimed or re-read this round
  size_t recorded = 0;       // new notifications
  size_t duplicates = 0;     // events whose notification existed (redeliveries)
  size_t ignored = 0;        // event types that notify nobody
  size_t failed = 0;         // left pending for a retry
  size_t dead_lettered = 0;  // moved to the dead-letter stream
  size_t pushed = 0;         // handed to the live streams
};

class EventConsumer {
 public:
  // `registry` may be null (tests). The store must outlive the consumer.
  EventConsumer(NotificationStore& store, ConsumerConfig consumer, PushConfig push,
                RedisConfig redis, metrics::Registry* registry = nullptr);
  ~EventConsumer();

  // One round: own pending entries first (after start or a failure), idle entries (of a dead
  // consumer, or whose push failed) when the claim interval is due, else new entries (blocking up
  // to block_ms). Throws RedisUnavailable or database errors (the entries stay pending).
  ConsumeRound run_once();

  void start();  // rounds on a background thread, backing off while failing
  void stop();

 private:
  int step();
  void ensure_group();
  std::vector<StreamEntry> read_group(const std::string& from_id, bool block);
  std::vector<StreamEntry> claim_idle();
  void fill_deliveries(std::vector<StreamEntry>& entries);
  void process(const std::vector<StreamEntry>& entries, ConsumeRound& round);
  // Pushes each notification; on success its source entries join `acknowledged`. Returns the
  // source entries of the pushes that failed, with the error.
  std::vector<std::pair<const StreamEntry*, std::string>> push(
      const std::vector<NotificationRecord>& notifications,
      const std::vector<std::vector<const StreamEntry*>>& sources,
      std::vector<std::string>& acknowledged, ConsumeRound& round);
  void update_pending_gauge();

  NotificationStore& store_;
  ConsumerConfig config_;
  Pusher pusher_;
  RedisConnection redis_;
  bool group_ready_ = false;
  bool own_pending_ = true;  // re-read this consumer's pending entries before new ones
  std::string own_pending_cursor_ = "0";
  std::string claim_cursor_ = "0-0";
  std::chrono::steady_clock::time_point next_claim_{};
  int failure_delay_ms_ = 0;

  metrics::Counter* delivered_inbox_ = nullptr;
  metrics::Counter* delivered_push_ = nullptr;
  metrics::Counter* dead_letters_ = nullptr;
  metrics::Family<metrics::Counter>* events_ = nullptr;
  metrics::Gauge* pending_ = nullptr;
  std::unique_ptr<BackgroundLoop> loop_;
};

}  // namespace trellis::notifications
