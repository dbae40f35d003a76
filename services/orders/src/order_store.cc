#include "trellis/orders/order_store.h"

#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "trellis/common/trace.h"

#include "trellis/orders/order_proto.h"
#include "trellis/orders/validation.h"

namespace trellis::orders {
namespace {

// The columns of OrderRecord, for a row of `orders o`; items come as one JSON array.
constexpr const char* kOrderColumns =
    "o.id::text, o.seq, o.user_id::text, o.status, o.currency, o.total_cents, "
    "(extract(epoch from o.created_at) * 1000000)::bigint, "
    "(extract(epoch from o.updated_at) * 1000000)::bigint, "
    "(SELECT coalesce(json_agg(json_build_array(i.sku, i.quantity, i.unit_price_cents) "
    "ORDER BY i.position), '[]')::text FROM order_items i WHERE i.order_id = o.id)";

OrderRecord read_order(const pqxx::row& row) {
  OrderRecord order;
  order.id = row[0].as<std::string>();
  order.seq = row[1].as<int64_t>();
  order.user_id = row[2].as<std::string>();
  auto status = parse_status(row[3].as<std::string>());
  if (!status) throw std::runtime_error("unknown order status in the database");
  order.status = *status;
  order.currency = row[4].as<std::string>();
  order.total_cents = row[5].as<int64_t>();
  order.created_at_us = row[6].as<int64_t>();
  order.updated_at_us = row[7].as<int64_t>();
  for (const auto& item : nlohmann::json::parse(row[8].as<std::string>())) {
    order.items.push_back(
        {item.at(0).get<std::string>(), item.at(1).get<int32_t>(), item.at(2).get<int64_t>()});
  }
  return order;
}

std::vector<OrderRecord> read_orders(const pqxx::result& rows) {
  std::vector<OrderRecord> orders;
  orders.reserve(rows.size());
  for (const auto& row : rows) orders.push_back(read_order(row));
  return orders;
}

std::string items_json(const std::vector<LineItem>& items) {
  auto array = nlohmann::json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    array.push_back({{"position", i},
                     {"sku", items[i].sku},
                     {"quantity", items[i].quantity},
                     {"unit_price_cents", items[i].unit_price_cents}});
  }
  return array.dump();
}

int64_t now_unix_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Order, items and outbox row in one statement (one round trip).
int64_t insert_new_order(pqxx::transaction_base& tx, const OrderRecord& order) {
  auto row = tx.exec_prepared1("orders_create", order.id, order.user_id, order.currency,
                               order.total_cents, order.created_at_us, items_json(order.items),
                               std::string(kOrderCreatedEvent), snapshot_json(order));
  return row[0].as<int64_t>();
}

void write_event(pqxx::work& tx, const OrderRecord& order, const std::string& type) {
  tx.exec_prepared("outbox_insert", order.id, order.user_id, type, snapshot_json(order));
}

// The events of several changed orders in one statement, in the given order.
void write_events(pqxx::work& tx, const std::vector<OrderRecord>& orders) {
  if (orders.empty()) return;
  auto events = nlohmann::json::array();
  for (const auto& order : orders) {
    events.push_back({{"order_id", order.id},
                      {"user_id", order.user_id},
                      {"type", std::string(event_type_for(order.status))},
                      {"payload", snapshot_json(order)}});
  }
  tx.exec_prepared("outbox_insert_many", events.dump());
}

}  // namespace

void OrderStore::prepare(pqxx::connection& c) {
  const std::string columns = kOrderColumns;
  // A new order with its items and its order.created outbox row.
  // Its time is the service's clock (the event is rendered before the insert), in microseconds.
  c.prepare("orders_create",
            "WITH o AS (INSERT INTO orders (id, user_id, status, currency, total_cents, "
            "created_at, updated_at) SELECT $1::uuid, $2::uuid, 'PENDING', $3, $4, t, t "
            "FROM (SELECT timestamptz 'epoch' + $5::bigint * interval '1 microsecond' AS t) now "
            "RETURNING id, seq), "
            "i AS (INSERT INTO order_items (order_id, position, sku, quantity, unit_price_cents) "
            "SELECT o.id, x.position, x.sku, x.quantity, x.unit_price_cents "
            "FROM o, jsonb_to_recordset($6::jsonb) "
            "AS x(position int, sku text, quantity int, unit_price_cents bigint)), "
            "e AS (INSERT INTO outbox (order_id, user_id, type, payload) "
            "SELECT o.id, $2::uuid, $7, $8::json FROM o) "
            "SELECT o.seq FROM o");
  c.prepare("orders_by_id", "SELECT " + columns + " FROM orders o WHERE o.id = $1::uuid");
  c.prepare("orders_lock",
            "SELECT " + columns + " FROM orders o WHERE o.id = $1::uuid FOR UPDATE OF o");
  c.prepare("orders_set_status",
            "UPDATE orders AS o SET status = $2, updated_at = now() WHERE o.id = $1::uuid "
            "RETURNING " +
                columns);
  c.prepare("orders_page_of_user", "SELECT " + columns +
                                       " FROM orders o WHERE o.user_id = $1::uuid AND o.seq < $2 "
                                       "ORDER BY o.seq DESC LIMIT $3");
  c.prepare("orders_page_all",
            "SELECT " + columns + " FROM orders o WHERE o.seq < $1 ORDER BY o.seq DESC LIMIT $2");
  // Due by the service's clock, the kind of clock that set created_at (replicas' clocks are
  // NTP-synchronised; the database's may be another machine's and is not compared with it).
  c.prepare("orders_auto_confirm",
            "WITH due AS (SELECT id FROM orders WHERE status = 'PENDING' "
            "AND created_at <= timestamptz 'epoch' + $1::bigint * interval '1 microsecond' "
            "ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "UPDATE orders AS o SET status = 'CONFIRMED', updated_at = now() FROM due "
            "WHERE o.id = due.id RETURNING " +
                columns);
  // Claims the key, or takes over an expired one that was not purged yet. No row back: the key
  // is held (by a committed transaction: ON CONFLICT waited for any in-flight one).
  c.prepare("idempotency_claim",
            "INSERT INTO idempotency_keys AS k "
            "(user_id, idempotency_key, request_hash, order_id, expires_at) "
            "VALUES ($1::uuid, $2, $3, gen_random_uuid(), now() + make_interval(secs => $4)) "
            "ON CONFLICT (user_id, idempotency_key) DO UPDATE SET "
            "request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id, "
            "created_at = now(), expires_at = EXCLUDED.expires_at "
            "WHERE k.expires_at <= now() RETURNING order_id::text");
  c.prepare("idempotency_lookup",
            "SELECT request_hash, order_id::text FROM idempotency_keys "
            "WHERE user_id = $1::uuid AND idempotency_key = $2");
  c.prepare("idempotency_purge",
            "DELETE FROM idempotency_keys k USING (SELECT user_id, idempotency_key "
            "FROM idempotency_keys WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED) d "
            "WHERE k.user_id = d.user_id AND k.idempotency_key = d.idempotency_key");
  // Many at once, in the given order; payloads come as text so that they are stored byte for byte.
  c.prepare("outbox_insert_many",
            "INSERT INTO outbox (order_id, user_id, type, payload) "
            "SELECT x.order_id, x.user_id, x.type, x.payload::json "
            "FROM ROWS FROM (jsonb_to_recordset($1::jsonb) "
            "AS (order_id uuid, user_id uuid, type text, payload text)) WITH ORDINALITY "
            "AS x(order_id, user_id, type, payload, position) ORDER BY x.position");
  c.prepare("outbox_insert",
            "INSERT INTO outbox (order_id, user_id, type, payload) "
            "VALUES ($1::uuid, $2::uuid, $3, $4::json)");
  c.prepare("outbox_purge",
            "DELETE FROM outbox o USING (SELECT id FROM outbox WHERE published_at IS NOT NULL "
            "AND published_at < now() - make_interval(secs => $1) "
            "LIMIT $2 FOR UPDATE SKIP LOCKED) d WHERE o.id = d.id");
}

void OrderStore::insert_or_recognise(pqxx::transaction_base& tx, OrderRecord& order,
                                     bool repeated) {
  try {
    order.seq = insert_new_order(tx, order);
  } catch (const pqxx::unique_violation&) {
    if (!repeated) throw;
    auto rows = tx.exec_prepared("orders_by_id", order.id);
    if (rows.empty() || rows[0][2].as<std::string>() != order.user_id) throw;
    order = read_order(rows[0]);
  }
}

CreateResult OrderStore::create(const std::string& user_id, const NewOrder& order,
                                const std::optional<IdempotencyClaim>& claim) {
  CreateResult result;
  auto& record = result.order;
  record.user_id = user_id;
  record.status = OrderStatus::kPending;
  record.items = order.items;
  record.total_cents = order.total_cents;
  record.currency = order.currency;
  record.created_at_us = record.updated_at_us = now_unix_micros();
  if (!claim) {
    // One statement, committed on its own. After a broken connection it is sent again with the
    // same id: if the first one was committed after all, the id is taken and that is our order.
    // Chosen here, so that the event can be rendered before the insert and the insert repeated
    // safely after a broken connection.
    record.id = trace::random_uuid();
    db::with_statement(pool_, [&](pqxx::nontransaction& tx, bool repeated) {
      insert_or_recognise(tx, record, repeated);
    });
    events_committed();
    return result;
  }
  auto outcome = db::with_transaction(pool_, [&](pqxx::work& tx) {
    pqxx::binarystring hash(claim->request_hash);
    // Twice at most: a key that expires and is purged between the two statements is free again.
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto claimed = tx.exec_prepared("idempotency_claim", user_id, claim->key, hash,
                                      options_.idempotency_ttl_s);
      if (!claimed.empty()) {
        record.id = claimed[0][0].as<std::string>();
        record.seq = insert_new_order(tx, record);
        return result;
      }
      auto held = tx.exec_prepared("idempotency_lookup", user_id, claim->key);
      if (held.empty()) continue;
      if (pqxx::binarystring(held[0][0]).str() != claim->request_hash) {
        throw IdempotencyKeyReused();
      }
      auto original = tx.exec_prepared("orders_by_id", held[0][1].as<std::string>());
      if (original.empty()) throw std::runtime_error("idempotency key without its order");
      CreateResult replay;
      replay.order = read_order(original[0]);
      replay.replayed = true;
      return replay;
    }
    throw std::runtime_error("idempotency key could not be claimed");
  });
  if (!outcome.replayed) events_committed();
  return outcome;
}

std::optional<OrderRecord> OrderStore::find(const std::string& id, const Viewer& viewer) {
  if (!is_uuid(id)) return std::nullopt;
  auto order = db::with_transaction(pool_, [&](pqxx::work& tx) -> std::optional<OrderRecord> {
    auto rows = tx.exec_prepared("orders_by_id", id);
    if (rows.empty()) return std::nullopt;
    return read_order(rows[0]);
  });
  if (order && !viewer.may_see(*order)) return std::nullopt;
  return order;
}

OrderPage OrderStore::list(const Viewer& viewer, int limit, std::optional<int64_t> before_seq) {
  auto before = before_seq.value_or(std::numeric_limits<int64_t>::max());
  // One row more than asked tells whether another page exists.
  auto fetch = limit + 1;
  auto rows = db::with_transaction(pool_, [&](pqxx::work& tx) {
    return viewer.admin ? tx.exec_prepared("orders_page_all", before, fetch)
                        : tx.exec_prepared("orders_page_of_user", viewer.user_id, before, fetch);
  });
  OrderPage page;
  page.orders = read_orders(rows);
  if (page.orders.size() > static_cast<size_t>(limit)) {
    page.orders.resize(static_cast<size_t>(limit));
    page.more = true;
  }
  return page;
}

TransitionResult OrderStore::transition(const std::string& id, const Viewer& viewer,
                                        OrderAction action) {
  if (!is_uuid(id)) return {};
  auto outcome = db::with_transaction(pool_, [&](pqxx::work& tx) {
    TransitionResult result;
    auto rows = tx.exec_prepared("orders_lock", id);
    if (rows.empty()) return result;
    auto current = read_order(rows[0]);
    if (!viewer.may_see(current)) return result;
    auto next = next_status(current.status, action);
    if (!next) {
      result.outcome = TransitionResult::Outcome::kIllegal;
      result.order = std::move(current);
      return result;
    }
    result.order =
        read_order(tx.exec_prepared1("orders_set_status", id, std::string(to_string(*next))));
    write_event(tx, result.order, event_type_for(*next));
    result.outcome = TransitionResult::Outcome::kChanged;
    return result;
  });
  if (outcome.outcome == TransitionResult::Outcome::kChanged) events_committed();
  return outcome;
}

int OrderStore::auto_confirm(int delay_ms, int batch) {
  int confirmed = db::with_transaction(pool_, [&](pqxx::work& tx) {
    auto due_before_us = now_unix_micros() - int64_t{delay_ms} * 1000;
    auto orders = read_orders(tx.exec_prepared("orders_auto_confirm", due_before_us, batch));
    write_events(tx, orders);
    return static_cast<int>(orders.size());
  });
  if (confirmed > 0) events_committed();
  return confirmed;
}

void OrderStore::events_committed() const {
  if (options_.events_committed) options_.events_committed();
}

int OrderStore::purge_expired_keys(int batch) {
  return db::with_transaction(pool_, [&](pqxx::work& tx) {
    return static_cast<int>(tx.exec_prepared0("idempotency_purge", batch).affected_rows());
  });
}

int OrderStore::purge_published_events(int retention_s, int batch) {
  return db::with_transaction(pool_, [&](pqxx::work& tx) {
    return static_cast<int>(tx.exec_prepared0("outbox_purge", retention_s, batch).affected_rows());
  });
}

}  // namespace trellis::orders
