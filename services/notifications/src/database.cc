#include "trellis/notifications/database.h"

#include "trellis/notifications/notification_store.h"

namespace trellis::notifications {

void prepare_statements(pqxx::connection& connection) {
  NotificationStore::prepare(connection);
}

}  // namespace trellis::notifications
