// Configuration of the orders service; every key, its default and its limits are here.
#pragma once

#include <string>

#include "trellis/common/pg_pool.h"

namespace trellis::orders {

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  int timeout_ms = 500;  // connect and command timeout of the outbox relay (1..60000)
};

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
  int relay_backoff_max_ms = 5000;    // reconnect backoff doubles up to this (100..600000)
};

struct Config {
  std::string grpc_listen = "127.0.0.1:50052";
  std::string log_level = "info";
  std::string metrics_listen;  // "host:port" of GET /metrics; empty: no metrics endpoint
  int drain_delay_ms = 0;      // SIGTERM: NOT_SERVING at once, still serving this long (for LBs)
  int grace_ms = 10000;        // then in-flight calls get this long to finish
  std::string otlp_endpoint;   // "http://host:4318/v1/traces"; empty: spans are not exported
  db::PgOptions database;      // dbname and user default to trellis_orders
  bool migrate_on_start = true;
  RedisConfig redis;
  OrdersConfig orders;
  std::string effective_json;  // the merged file + environment, secrets redacted, for the log
};

// Reads and validates a config file plus TRELLIS_ORDERS__* environment overrides; throws
// config::ConfigError naming the bad key.
Config load_config(const std::string& path);

}  // namespace trellis::orders
