// The configuration blocks every service shares, read the same way everywhere: `grpc.*`,
// `log_level`, `metrics.listen`, `shutdown.{drain_delay_ms,grace_ms}`, `tracing.otlp_endpoint`,
// `database.*` and `redis.*`. A service's Config derives from RuntimeSettings and adds its own.
#pragma once

#include <string>

#include "trellis/common/config.h"
#include "trellis/common/pg_pool.h"

namespace trellis::service {

struct RuntimeSettings {
  std::string grpc_listen;  // "host:port" of the gRPC server
  // Handler threads kept waiting for calls between bursts (gRPC's MAX_POLLERS). gRPC's default
  // of 2 makes every burst start new threads that exit right after their call: measured 0.23
  // thread creations per order at 450 orders/s, about a quarter of the orders service's CPU.
  int grpc_idle_threads = 32;
  std::string log_level = "info";
  std::string metrics_listen;  // "host:port" of GET /metrics; empty: no metrics endpoint
  int drain_delay_ms = 0;      // SIGTERM: NOT_SERVING at once, still serving this long (for LBs)
  int grace_ms = 10000;        // then in-flight calls get this long to finish
  std::string otlp_endpoint;   // "http://host:4318/v1/traces"; empty: spans are not exported
};

struct RedisSettings {
  std::string host = "127.0.0.1";
  int port = 6379;
  int timeout_ms = 500;  // connect and command timeout (1..60000)
};

// Reads the shared top-level keys of `root` (the service's own keys stay for the caller).
void read_runtime_settings(config::ObjectReader& root, RuntimeSettings& out);
// `database` block; dbname and user default to `default_name`, application_name is set to it.
void read_database_settings(config::ObjectReader database, db::PgOptions& out,
                            const std::string& default_name);
void read_redis_settings(config::ObjectReader redis, RedisSettings& out);

}  // namespace trellis::service
