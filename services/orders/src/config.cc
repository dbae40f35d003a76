#include "trellis/orders/config.h"

#include "trellis/common/config.h"
#include "trellis/common/log.h"

namespace trellis::orders {
namespace {

int read_int(config::ObjectReader& reader, const std::string& key, int value, int min, int max) {
  return static_cast<int>(reader.get_int(key, value, min, max));
}

void read_orders(config::ObjectReader orders, OrdersConfig& o) {
  constexpr int kDayMs = 86400000;
  o.auto_confirm_delay_ms =
      read_int(orders, "auto_confirm_delay_ms", o.auto_confirm_delay_ms, 0, kDayMs);
  o.auto_confirm_interval_ms =
      read_int(orders, "auto_confirm_interval_ms", o.auto_confirm_interval_ms, 10, 60000);
  o.auto_confirm_batch = read_int(orders, "auto_confirm_batch", o.auto_confirm_batch, 1, 10000);
  o.idempotency_ttl_s = read_int(orders, "idempotency_ttl_s", o.idempotency_ttl_s, 60, 30 * 86400);
  o.purge_interval_ms = read_int(orders, "purge_interval_ms", o.purge_interval_ms, 100, kDayMs);
  o.outbox_retention_s =
      read_int(orders, "outbox_retention_s", o.outbox_retention_s, 60, 365 * 86400);
  o.relay_stream = orders.get_string("relay_stream", o.relay_stream);
  if (o.relay_stream.empty()) {
    throw config::ConfigError("orders.orders.relay_stream: must not be empty");
  }
  o.relay_stream_maxlen =
      read_int(orders, "relay_stream_maxlen", o.relay_stream_maxlen, 1000, 1000000000);
  o.relay_batch = read_int(orders, "relay_batch", o.relay_batch, 1, 10000);
  o.relay_interval_ms = read_int(orders, "relay_interval_ms", o.relay_interval_ms, 10, 60000);
  o.relay_coalesce_ms = read_int(orders, "relay_coalesce_ms", o.relay_coalesce_ms, 0, 1000);
  o.relay_backoff_max_ms =
      read_int(orders, "relay_backoff_max_ms", o.relay_backoff_max_ms, 100, 600000);
  orders.reject_unknown_keys();
}

}  // namespace

Config load_config(const std::string& path) {
  auto merged = config::load_with_env(path, "TRELLIS_ORDERS");
  config::ObjectReader root(merged, "orders");
  Config out;
  out.effective_json = config::redact(merged).dump();

  service::read_runtime_settings(root, out);
  service::read_database_settings(root.get_object("database"), out.database, "trellis_orders");
  out.migrate_on_start = root.get_bool("migrate_on_start", out.migrate_on_start);
  service::read_redis_settings(root.get_object("redis"), out.redis);

  read_orders(root.get_object("orders"), out.orders);

  root.reject_unknown_keys();
  return out;
}

}  // namespace trellis::orders
