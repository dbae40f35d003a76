#include "trellis/orders/config.h"

#include "trellis/common/config.h"
#include "trellis/common/log.h"

namespace trellis::orders {
namespace {

int read_int(config::ObjectReader& reader, const std::string& key, int value, int min, int max) {
  return static_cast<int>(reader.get_int(key, value, min, max));
}

void read_database(config::ObjectReader database, db::PgOptions& pg) {
  pg.host = database.get_string("host", pg.host);
  pg.port = read_int(database, "port", pg.port, 1, 65535);
  pg.dbname = database.get_string("dbname", "trellis_orders");
  pg.user = database.get_string("user", "trellis_orders");
  pg.password = database.get_string("password", "");
  pg.pool_size = read_int(database, "pool_size", pg.pool_size, 1, 256);
  pg.acquire_timeout_ms = read_int(database, "acquire_timeout_ms", pg.acquire_timeout_ms, 1, 60000);
  pg.statement_timeout_ms =
      read_int(database, "statement_timeout_ms", pg.statement_timeout_ms, 1, 600000);
  pg.application_name = "trellis-orders";
  database.reject_unknown_keys();
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

  auto grpc = root.get_object("grpc");
  out.grpc_listen = grpc.get_string("listen", out.grpc_listen);
  grpc.reject_unknown_keys();

  out.log_level = root.get_string("log_level", out.log_level);
  log::Level ignored;
  if (!log::parse_level(out.log_level, ignored)) {
    throw config::ConfigError("orders.log_level: must be debug, info, warn or error");
  }

  auto metrics = root.get_object("metrics");
  out.metrics_listen = metrics.get_string("listen", out.metrics_listen);
  metrics.reject_unknown_keys();

  auto shutdown = root.get_object("shutdown");
  out.drain_delay_ms = read_int(shutdown, "drain_delay_ms", out.drain_delay_ms, 0, 600000);
  out.grace_ms = read_int(shutdown, "grace_ms", out.grace_ms, 0, 600000);
  shutdown.reject_unknown_keys();

  auto tracing = root.get_object("tracing");
  out.otlp_endpoint = tracing.get_string("otlp_endpoint", out.otlp_endpoint);
  tracing.reject_unknown_keys();

  read_database(root.get_object("database"), out.database);
  out.migrate_on_start = root.get_bool("migrate_on_start", out.migrate_on_start);

  auto redis = root.get_object("redis");
  out.redis.host = redis.get_string("host", out.redis.host);
  out.redis.port = read_int(redis, "port", out.redis.port, 1, 65535);
  out.redis.timeout_ms = read_int(redis, "timeout_ms", out.redis.timeout_ms, 1, 60000);
  redis.reject_unknown_keys();

  read_orders(root.get_object("orders"), out.orders);

  root.reject_unknown_keys();
  return out;
}

}  // namespace trellis::orders
