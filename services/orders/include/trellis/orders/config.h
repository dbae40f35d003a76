// Configuration of the orders service; every key, its default and its limits are here.
#pragma once

#include <string>

#include "trellis/common/pg_pool.h"
#include "trellis/common/service_config.h"

namespace trellis::orders {

using RedisConfig = service::RedisSettings;  // the outbox relay's connection

// The `orders` block: business rules and the background loops.
struct OrdersConfig {
  int auto_confirm_delay_ms = 2000;    // PENDING orders older than this are confirmed (0..1 day)
  int auto_confirm_interval_ms = 250;  // how often the auto-confirm sweep runs (10..60000)
  int auto_confirm_batch = 100;        // orders confirmed per sweep transaction (1..10000)
  int idempotency_ttl_s = 86400;       // an Idempotency-Key is remembered this long (60..30 days)
  int purge_interval_ms = 60000;       // expired keys and old published events (100..1 day)
  int outbox_retention_s = 604800;     // published outbox rows are deleted after this (60..1 year)
  std::string relay_stream = "trellis:events:orders";  // Redis Stream the relay XADDs to
  int relay_stream_maxlen = 1000000;  // XADD MAXLEN ~ (approximate trim; 1000..1e9)
  int relay_batch = 100;              // outbox rows per relay round, pipelined (1..10000)
  int relay_interval_ms = 200;        // idle wait between rounds when nothing was left (10..60000)
  int relay_coalesce_ms = 5;          // a round waits this long for more orders to batch (0..1000)
  int relay_backoff_max_ms = 5000;    // reconnect backoff doubles up to this (100..600000)
};

// The shared service settings (grpc, log_level, metrics, shutdown, tracing) plus the orders'.
struct Config : service::RuntimeSettings {
  Config() { grpc_listen = "127.0.0.1:50052"; }
  db::PgOptions database;  // dbname and user default to trellis_orders
  bool migrate_on_start = true;
  RedisConfig redis;
  OrdersConfig orders;
  std::string effective_json;  // the merged file + environment, secrets redacted, for the log
};

// Reads and validates a config file plus TRELLIS_ORDERS__* environment overrides; throws
// config::ConfigError naming the bad key.
Config load_config(const std::string& path);

}  // namespace trellis::orders
