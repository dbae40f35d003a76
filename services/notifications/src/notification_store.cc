#include "trellis/notifications/notification_store.h"

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <utility>

namespace trellis::notifications {
namespace {

constexpr const char* kColumns =
    "id::text, seq, user_id::text, type, coalesce(order_id::text, ''), title, "
    "(extract(epoch from created_at) * 1000000)::bigint, "
    "(extract(epoch from read_at) * 1000000)::bigint";

NotificationRecord read_row(const pqxx::row& row) {
  NotificationRecord n;
  n.id = row[0].as<std::string>();
  n.seq = row[1].as<int64_t>();
  n.user_id = row[2].as<std::string>();
  n.type = row[3].as<std::string>();
  n.order_id = row[4].as<std::string>();
  n.title = row[5].as<std::string>();
  n.created_at_us = row[6].as<int64_t>();
  if (!row[7].is_null()) n.read_at_us = row[7].as<int64_t>();
  return n;
}

std::vector<NotificationRecord> read_rows(const pqxx::result& rows) {
  std::vector<NotificationRecord> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(read_row(row));
  return out;
}

}  // namespace

void NotificationStore::prepare(pqxx::connection& c) {
  const std::string columns = kColumns;
  c.prepare("notifications_insert",
            "INSERT INTO notifications (source, event_id, user_id, type, order_id, title) "
            "VALUES ($1, $2, $3::uuid, $4, $5::uuid, $6) "
            "ON CONFLICT (source, event_id) DO NOTHING RETURNING " +
                columns);
  // A batch in one statement, inserted in batch order (seq follows it). Rows whose event was
  // recorded before are not returned; the caller looks them up one by one (redeliveries: rare).
  c.prepare("notifications_insert_many",
            "INSERT INTO notifications (source, event_id, user_id, type, order_id, title) "
            "SELECT x.source, x.event_id, x.user_id, x.type, x.order_id, x.title "
            "FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (source text, event_id bigint, "
            "user_id uuid, type text, order_id uuid, title text)) WITH ORDINALITY "
            "AS x(source, event_id, user_id, type, order_id, title, position) "
            "ORDER BY x.position ON CONFLICT (source, event_id) DO NOTHING RETURNING " +
                columns + ", source, event_id");
  c.prepare("notifications_by_event",
            "SELECT " + columns + " FROM notifications WHERE source = $1 AND event_id = $2");
  c.prepare("notifications_list", "SELECT " + columns +
                                      " FROM notifications WHERE user_id = $1::uuid AND seq < $2 "
                                      "AND (NOT $3 OR read_at IS NULL) ORDER BY seq DESC LIMIT $4");
  c.prepare("notifications_mark_read",
            "UPDATE notifications SET read_at = coalesce(read_at, now()) "
            "WHERE id = $1::uuid AND user_id = $2::uuid RETURNING " +
                columns);
  c.prepare("notifications_unread_count",
            "SELECT count(*) FROM notifications WHERE user_id = $1::uuid AND read_at IS NULL");
}

namespace {

Recorded record_in(pqxx::work& tx, const NewNotification& n) {
  auto inserted = tx.exec_prepared("notifications_insert", n.source, n.event_id, n.user_id, n.type,
                                   n.order_id, n.title);
  if (!inserted.empty()) return Recorded{read_row(inserted[0]), true};
  // A conflicting row exists and is committed (ON CONFLICT waited for it), or was inserted
  // earlier in this transaction: this statement sees it.
  auto existing = tx.exec_prepared("notifications_by_event", n.source, n.event_id);
  if (existing.empty()) throw std::runtime_error("notification vanished after a conflict");
  return Recorded{read_row(existing[0]), false};
}

}  // namespace

Recorded NotificationStore::record(const NewNotification& n) {
  return db::with_transaction(pool_, [&](pqxx::work& tx) { return record_in(tx, n); });
}

std::vector<Recorded> NotificationStore::record_all(const std::vector<NewNotification>& batch) {
  if (batch.empty()) return {};
  auto rows = nlohmann::json::array();
  for (const auto& n : batch) {
    rows.push_back({{"source", n.source},
                    {"event_id", n.event_id},
                    {"user_id", n.user_id},
                    {"type", n.type},
                    {"order_id", n.order_id},
                    {"title", n.title}});
  }
  // Invalid UTF-8 becomes U+FFFD here; one-by-one recording would refuse it as poison instead.
  auto json = rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return db::with_transaction(pool_, [&](pqxx::work& tx) {
    std::map<std::pair<std::string, int64_t>, NotificationRecord> inserted;
    for (const auto& row : tx.exec_prepared("notifications_insert_many", json)) {
      inserted.emplace(std::pair(row[8].as<std::string>(), row[9].as<int64_t>()), read_row(row));
    }
    std::vector<Recorded> out;
    out.reserve(batch.size());
    for (const auto& n : batch) {
      auto it = inserted.find({n.source, n.event_id});
      if (it == inserted.end()) {
        out.push_back(record_in(tx, n));  // recorded before (or concurrently by another replica)
        continue;
      }
      // The batch may hold one event twice: the first made it, the second finds it.
      bool first = std::none_of(out.begin(), out.end(), [&](const Recorded& r) {
        return r.notification.id == it->second.id;
      });
      out.push_back(Recorded{it->second, first});
    }
    return out;
  });
}

NotificationPage NotificationStore::list(const std::string& user_id, bool unread_only, int limit,
                                         std::optional<int64_t> before_seq) {
  return db::with_read(pool_, [&](pqxx::nontransaction& tx) {
    NotificationPage page;
    auto rows = tx.exec_prepared("notifications_list", user_id,
                                 before_seq.value_or(std::numeric_limits<int64_t>::max()),
                                 unread_only, limit + 1);
    page.notifications = read_rows(rows);
    if (page.notifications.size() > static_cast<size_t>(limit)) {
      page.more = true;
      page.notifications.pop_back();
    }
    return page;
  });
}

std::optional<NotificationRecord> NotificationStore::mark_read(const std::string& id,
                                                               const std::string& user_id) {
  return db::with_transaction(pool_, [&](pqxx::work& tx) -> std::optional<NotificationRecord> {
    auto rows = tx.exec_prepared("notifications_mark_read", id, user_id);
    if (rows.empty()) return std::nullopt;
    return read_row(rows[0]);
  });
}

int64_t NotificationStore::unread_count(const std::string& user_id) {
  return db::with_read(pool_, [&](pqxx::nontransaction& tx) {
    return tx.exec_prepared1("notifications_unread_count", user_id)[0].as<int64_t>();
  });
}

}  // namespace trellis::notifications
