// The orders database: its migrations (embedded from services/orders/migrations/ at build time)
// and the prepared statements every pooled connection gets.
#pragma once

#include <pqxx/pqxx>
#include <vector>

#include "trellis/common/migrator.h"

namespace trellis::orders {

const std::vector<db::Migration>& migrations();

// The statements of OrderStore and OutboxRelay: the PgPool preparer of the service.
void prepare_statements(pqxx::connection& connection);

}  // namespace trellis::orders
