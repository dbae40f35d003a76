#include "trellis/common/service_config.h"

#include <algorithm>

#include "trellis/common/log.h"

namespace trellis::service {
namespace {

int read_int(config::ObjectReader& reader, const std::string& key, int value, int min, int max) {
  return static_cast<int>(reader.get_int(key, value, min, max));
}

}  // namespace

void read_runtime_settings(config::ObjectReader& root, RuntimeSettings& out) {
  auto grpc = root.get_object("grpc");
  out.grpc_listen = grpc.get_string("listen", out.grpc_listen);
  out.grpc_idle_threads = read_int(grpc, "idle_threads", out.grpc_idle_threads, 1, 1024);
  grpc.reject_unknown_keys();

  out.log_level = root.get_string("log_level", out.log_level);
  log::Level ignored;
  if (!log::parse_level(out.log_level, ignored)) {
    throw config::ConfigError(root.where() + ".log_level: must be debug, info, warn or error");
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
}

void read_database_settings(config::ObjectReader database, db::PgOptions& pg,
                            const std::string& default_name) {
  pg.host = database.get_string("host", pg.host);
  pg.port = read_int(database, "port", pg.port, 1, 65535);
  pg.dbname = database.get_string("dbname", default_name);
  pg.user = database.get_string("user", default_name);
  pg.password = database.get_string("password", "");
  pg.pool_size = read_int(database, "pool_size", pg.pool_size, 1, 256);
  pg.acquire_timeout_ms = read_int(database, "acquire_timeout_ms", pg.acquire_timeout_ms, 1, 60000);
  pg.statement_timeout_ms =
      read_int(database, "statement_timeout_ms", pg.statement_timeout_ms, 1, 600000);
  pg.application_name = default_name;  // "trellis_users" → "trellis-users" in pg_stat_activity
  std::replace(pg.application_name.begin(), pg.application_name.end(), '_', '-');
  database.reject_unknown_keys();
}

void read_redis_settings(config::ObjectReader redis, RedisSettings& out) {
  out.host = redis.get_string("host", out.host);
  out.port = read_int(redis, "port", out.port, 1, 65535);
  out.timeout_ms = read_int(redis, "timeout_ms", out.timeout_ms, 1, 60000);
  redis.reject_unknown_keys();
}

}  // namespace trellis::service
