// All SQL of the notifications service. Every statement is prepared and parameterized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trellis/common/pg_pool.h"
#include "trellis/notifications/notification.h"

namespace trellis::notifications {

struct Recorded {
  NotificationRecord notification;
  bool created = false;  // false: the event had been recorded before (a redelivery)
};

struct NotificationPage {
  std::vector<NotificationRecord> notifications;  // newest first
  bool more = false;
};

class NotificationStore {
 public:
  explicit NotificationStore(db::PgPool& pool) : pool_(pool) {}

  static void prepare(pqxx::connection& connection);

  // Stores the notification of one event, exactly once: the (source, event_id) unique key makes a
  // redelivered event return the notification it made the first time (created=false).
  Recorded record(const NewNotification& notification);
  // The same for a batch, in one transaction (all or nothing); results in the batch's order. An
  // event twice in the batch yields created=true once and then created=false.
  std::vector<Recorded> record_all(const std::vector<NewNotification>& batch);

  // The user's notifications, newest first, strictly older (by seq) than `before_seq` if given.
  NotificationPage list(const std::string& user_id, bool unread_only, int limit,
                        std::optional<int64_t> before_seq);

  // Marks it read (keeping the first read time); nullopt when it does not exist or is another
  // user's. `id` must be a UUID.
  std::optional<NotificationRecord> mark_read(const std::string& id, const std::string& user_id);

  int64_t unread_count(const std::string& user_id);

 private:
  db::PgPool& pool_;
};

}  // namespace trellis::notifications
