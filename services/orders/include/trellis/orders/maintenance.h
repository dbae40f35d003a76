// Background upkeep, on two threads: the auto-confirm sweep (PENDING orders older than
// auto_confirm_delay_ms become CONFIRMED, with their events) and the purge of expired idempotency
// keys and of outbox rows published longer than outbox_retention_s ago. Both are safe with several
// replicas: rows locked by another replica are skipped.
#pragma once

#include "trellis/common/background_loop.h"
#include "trellis/common/metrics.h"
#include "trellis/orders/config.h"
#include "trellis/orders/order_store.h"

namespace trellis::orders {

class Maintenance {
 public:
  // `registry` may be null (tests). The store must outlive this object.
  Maintenance(OrderStore& store, const OrdersConfig& config, metrics::Registry* registry = nullptr);

  // One sweep; returns the delay before the next (0 when a full batch suggests more are due).
  int confirm_due_orders();
  // One purge; returns the delay before the next.
  int purge();

  void start();
  void stop();

 private:
  OrderStore& store_;
  OrdersConfig config_;
  metrics::Counter* auto_confirmed_ = nullptr;
  BackgroundLoop confirm_loop_;
  BackgroundLoop purge_loop_;
};

}  // namespace trellis::orders
