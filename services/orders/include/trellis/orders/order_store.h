// All SQL of the orders service. Every statement is prepared and parameterized. Every change of
// an order writes its outbox event in the same transaction, so an event exists if and only if the
// change was committed (the relay publishes it later; see outbox_relay.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/common/pg_pool.h"
#include "trellis/orders/order.h"

namespace trellis::orders {

// An Idempotency-Key with the hash of the request that came with it.
struct IdempotencyClaim {
  std::string key;
  std::string request_hash;  // SHA-256, raw bytes
};

struct CreateResult {
  OrderRecord order;
  bool replayed = false;  // the key was seen before with the same request: the original order
};

// The key was used before (within its TTL) with a different request.
class IdempotencyKeyReused : public std::runtime_error {
 public:
  IdempotencyKeyReused() : std::runtime_error("idempotency key reused with another request") {}
};

struct OrderPage {
  std::vector<OrderRecord> orders;  // newest first
  bool more = false;                // further orders exist after the last one
};

struct TransitionResult {
  enum class Outcome { kChanged, kNotFound, kIllegal };
  Outcome outcome = Outcome::kNotFound;
  OrderRecord order;  // after the change (kChanged) or as it is (kIllegal)
};

struct StoreOptions {
  int idempotency_ttl_s = 86400;
  // Called on the committing thread after each commit that wrote outbox rows: wakes the relay.
  std::function<void()> events_committed;
};

class OrderStore {
 public:
  OrderStore(db::PgPool& pool, StoreOptions options) : pool_(pool), options_(std::move(options)) {}

  // Registers the prepared statements on a new pooled connection.
  static void prepare(pqxx::connection& connection);

  // Creates a PENDING order with its "order.created" event. With a claim, the key is claimed in
  // the same transaction through its primary key (INSERT ... ON CONFLICT): concurrent requests
  // with one key wait for the first one's commit and then return its order (replayed), so exactly
  // one order exists. Throws IdempotencyKeyReused when the key came with a different request.
  // `user_id` must be a UUID.
  CreateResult create(const std::string& user_id, const NewOrder& order,
                      const std::optional<IdempotencyClaim>& claim);

  // The statement behind create() without a key: inserts `order` (id chosen by the caller) with
  // its items and order.created event, and sets its seq. `repeated`: this is the second attempt
  // after a broken connection, so the first may have been committed; then an existing order with
  // this id and user is that one and is read back instead of failing. Exposed for tests.
  static void insert_or_recognise(pqxx::transaction_base& tx, OrderRecord& order, bool repeated);

  // nullopt when there is no such order or the viewer may not see it.
  std::optional<OrderRecord> find(const std::string& id, const Viewer& viewer);

  // Orders the viewer may see, newest first, strictly older (by seq) than `before_seq` if given.
  OrderPage list(const Viewer& viewer, int limit, std::optional<int64_t> before_seq);

  // Applies `action` under a row lock. kNotFound also when the viewer may not see the order.
  // Permission to act (e.g. admin for confirm) is the caller's to check.
  TransitionResult transition(const std::string& id, const Viewer& viewer, OrderAction action);

  // Confirms up to `batch` PENDING orders created at least `delay_ms` ago, oldest first; rows
  // locked by someone else are skipped (SKIP LOCKED), so replicas can sweep at the same time.
  // Returns how many were confirmed.
  int auto_confirm(int delay_ms, int batch);

  // Deletes up to `batch` expired idempotency keys; returns how many.
  int purge_expired_keys(int batch);
  // Deletes up to `batch` outbox rows published more than `retention_s` ago; returns how many.
  int purge_published_events(int retention_s, int batch);

 private:
  void events_committed() const;
  db::PgPool& pool_;
  StoreOptions options_;
};

}  // namespace trellis::orders
