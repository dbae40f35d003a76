#include "trellis/orders/database.h"

#include "trellis/orders/order_store.h"
#include "trellis/orders/outbox_relay.h"

namespace trellis::orders {

void prepare_statements(pqxx::connection& connection) {
  OrderStore::prepare(connection);
  OutboxRelay::prepare(connection);
}

}  // namespace trellis::orders
