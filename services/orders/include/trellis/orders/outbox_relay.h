// The outbox relay: publishes committed outbox rows, in id order, to a Redis Stream and marks them
// published.
//
// Delivery is at least once. A round claims up to `batch` unpublished rows (FOR UPDATE SKIP
// LOCKED), XADDs them pipelined, then marks the acknowledged ones published and commits. If Redis
// is unreachable nothing is marked and the rows go out in a later round (reconnecting with
// exponential backoff). If the process dies between XADD and commit, the rows are published again
// by the next round: consumers must deduplicate on the event_id field (the outbox id).
//
// Ordering: each round holds a transaction-scoped advisory lock, so one replica relays at a time
// and events of one order (whose changes are serialized by its row lock) reach the stream in the
// order they happened. Across different orders, a row whose transaction commits late may follow
// rows with higher ids.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "trellis/common/background_loop.h"
#include "trellis/common/metrics.h"
#include "trellis/common/pg_pool.h"
#include "trellis/orders/config.h"
#include "trellis/orders/stream_writer.h"

namespace trellis::orders {

// The advisory lock that makes one replica at a time the relay ("trlorder" in ASCII).
inline constexpr int64_t kRelayLockKey = 0x74726c6f72646572;

struct RelayRound {
  size_t claimed = 0;    // unpublished rows this round locked
  size_t published = 0;  // of which Redis acknowledged and the database marked published
  bool busy = false;     // another replica holds the relay lock: nothing was tried
  int64_t backlog = -1;  // unpublished rows after the round (-1: unknown, the round failed)
  std::string error;     // why fewer than `claimed` were published
};

class OutboxRelay {
 public:
  // `registry` may be null (tests). The pool must outlive the relay.
  OutboxRelay(db::PgPool& pool, const OrdersConfig& options, RedisConfig redis,
              metrics::Registry* registry = nullptr);
  ~OutboxRelay();

  // Registers the relay's prepared statements on a new pooled connection.
  static void prepare(pqxx::connection& connection);

  // One round; throws only for database errors.
  RelayRound run_once();

  // Rounds on a background thread: at once again after a full batch, after relay_interval_ms when
  // the outbox is drained, with doubling backoff up to relay_backoff_max_ms while failing.
  void start();
  void stop();

  // Starts a round at once unless the relay is backing off; called after each commit of this
  // process that wrote outbox rows, so events leave within milliseconds. Rows committed by other
  // replicas are their relays' to wake for; polling every relay_interval_ms covers a replica that
  // died before publishing. (A NOTIFY per commit would reach every replica, but PostgreSQL holds
  // a global lock from a notifying commit's NOTIFY until its WAL is flushed: order creation
  // would commit one at a time.) Thread-safe, also before start().
  void wake();

 private:
  int step();

  db::PgPool& pool_;
  OrdersConfig options_;
  StreamWriter writer_;
  std::atomic<int> failure_delay_ms_{0};
  bool last_round_full_ = false;  // the relay thread's own
  metrics::Counter* published_ = nullptr;
  metrics::Counter* rounds_ = nullptr;
  metrics::Counter* failures_ = nullptr;
  metrics::Gauge* backlog_ = nullptr;
  BackgroundLoop loop_;
};

}  // namespace trellis::orders
