// A stored notification, and how an order event becomes one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace trellis::notifications {

struct NotificationRecord {
  std::string id;
  int64_t seq = 0;  // insertion order (pagination position)
  std::string user_id;
  std::string type;
  std::string order_id;
  std::string title;
  int64_t created_at_us = 0;
  std::optional<int64_t> read_at_us;
};

struct NewNotification {
  std::string source;  // the stream the event came from
  int64_t event_id = 0;
  std::string user_id;
  std::string type;
  std::string order_id;
  std::string title;
};

// An event that can never become a notification (a missing or malformed field). Processing it
// again cannot help: after max_deliveries it goes to the dead-letter stream.
class PoisonEvent : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The notification for an order event (fields event_id, type, user_id, order_id, payload as the
// orders relay writes them). nullopt for event types that notify nobody (unknown types are skipped,
// so that new producers do not break old consumers). Throws PoisonEvent for malformed events.
std::optional<NewNotification> notification_for_order_event(
    const std::string& source, const std::map<std::string, std::string>& fields);

}  // namespace trellis::notifications
