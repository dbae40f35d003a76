// The notifications database: its migrations (embedded from services/notifications/migrations/ at
// build time) and the prepared statements every pooled connection gets.
#pragma once

#include <pqxx/pqxx>
#include <vector>

#include "trellis/common/migrator.h"

namespace trellis::notifications {

const std::vector<db::Migration>& migrations();

// The PgPool preparer of the service.
void prepare_statements(pqxx::connection& connection);

}  // namespace trellis::notifications
