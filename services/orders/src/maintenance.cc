#include "trellis/orders/maintenance.h"

#include "trellis/common/log.h"

namespace trellis::orders {

Maintenance::Maintenance(OrderStore& store, const OrdersConfig& config, metrics::Registry* registry)
    : store_(store),
      config_(config),
      confirm_loop_("auto-confirm", [this] { return confirm_due_orders(); }),
      purge_loop_("purge", [this] { return purge(); }) {
  if (registry) {
    auto_confirmed_ = &registry
                           ->counter("orders_auto_confirmed_total",
                                     "PENDING orders confirmed by the background sweep")
                           .with({});
  }
}

int Maintenance::confirm_due_orders() {
  int confirmed = store_.auto_confirm(config_.auto_confirm_delay_ms, config_.auto_confirm_batch);
  if (confirmed > 0) {
    if (auto_confirmed_) auto_confirmed_->inc(static_cast<uint64_t>(confirmed));
    log::debug("orders auto-confirmed", {{"count", confirmed}});
  }
  return confirmed == config_.auto_confirm_batch ? 0 : config_.auto_confirm_interval_ms;
}

int Maintenance::purge() {
  constexpr int kBatch = 1000;  // rows per statement: short transactions, short locks
  constexpr int kRounds = 100;  // per run, so that one run stays bounded
  int keys = 0, events = 0;
  for (int round = 0; round < kRounds; ++round) {
    int deleted = store_.purge_expired_keys(kBatch);
    keys += deleted;
    if (deleted < kBatch) break;
  }
  for (int round = 0; round < kRounds; ++round) {
    int deleted = store_.purge_published_events(config_.outbox_retention_s, kBatch);
    events += deleted;
    if (deleted < kBatch) break;
  }
  if (keys + events > 0) {
    log::info("purged expired data", {{"idempotency_keys", keys}, {"outbox_events", events}});
  }
  return config_.purge_interval_ms;
}

void Maintenance::start() {
  confirm_loop_.start();
  purge_loop_.start();
}

void Maintenance::stop() {
  confirm_loop_.stop();
  purge_loop_.stop();
}

}  // namespace trellis::orders
