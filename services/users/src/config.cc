#include "trellis/users/config.h"

#include "trellis/common/config.h"
#include "trellis/common/log.h"

namespace trellis::users {

Config load_config(const std::string& path) {
  auto merged = config::load_with_env(path, "TRELLIS_USERS");
  config::ObjectReader root(merged, "users");
  Config out;
  out.effective_json = config::redact(merged).dump();

  auto grpc = root.get_object("grpc");
  out.grpc_listen = grpc.get_string("listen", out.grpc_listen);
  grpc.reject_unknown_keys();

  out.log_level = root.get_string("log_level", out.log_level);
  log::Level ignored;
  if (!log::parse_level(out.log_level, ignored)) {
    throw config::ConfigError("users.log_level: must be debug, info, warn or error");
  }

  auto metrics = root.get_object("metrics");
  out.metrics_listen = metrics.get_string("listen", out.metrics_listen);
  metrics.reject_unknown_keys();

  auto shutdown = root.get_object("shutdown");
  out.drain_delay_ms =
      static_cast<int>(shutdown.get_int("drain_delay_ms", out.drain_delay_ms, 0, 600000));
  out.grace_ms = static_cast<int>(shutdown.get_int("grace_ms", out.grace_ms, 0, 600000));
  shutdown.reject_unknown_keys();

  auto tracing = root.get_object("tracing");
  out.otlp_endpoint = tracing.get_string("otlp_endpoint", out.otlp_endpoint);
  tracing.reject_unknown_keys();

  auto database = root.get_object("database");
  auto& pg = out.database;
  pg.host = database.get_string("host", pg.host);
  pg.port = static_cast<int>(database.get_int("port", pg.port, 1, 65535));
  pg.dbname = database.get_string("dbname", "trellis_users");
  pg.user = database.get_string("user", "trellis_users");
  pg.password = database.get_string("password", "");
  pg.pool_size = static_cast<int>(database.get_int("pool_size", pg.pool_size, 1, 256));
  pg.acquire_timeout_ms =
      static_cast<int>(database.get_int("acquire_timeout_ms", pg.acquire_timeout_ms, 1, 60000));
  pg.statement_timeout_ms = static_cast<int>(
      database.get_int("statement_timeout_ms", pg.statement_timeout_ms, 1, 600000));
  pg.application_name = "trellis-users";
  database.reject_unknown_keys();

  out.migrate_on_start = root.get_bool("migrate_on_start", out.migrate_on_start);

  auto redis = root.get_object("redis");
  out.redis.host = redis.get_string("host", out.redis.host);
  out.redis.port = static_cast<int>(redis.get_int("port", out.redis.port, 1, 65535));
  out.redis.timeout_ms =
      static_cast<int>(redis.get_int("timeout_ms", out.redis.timeout_ms, 1, 60000));
  redis.reject_unknown_keys();

  auto tokens = root.get_object("tokens");
  auto& t = out.tokens;
  t.issuer = tokens.get_string("issuer", t.issuer);
  t.audience = tokens.get_string("audience", t.audience);
  t.access_ttl_s = static_cast<int>(tokens.get_int("access_ttl_s", t.access_ttl_s, 1, 86400));
  t.refresh_ttl_s =
      static_cast<int>(tokens.get_int("refresh_ttl_s", t.refresh_ttl_s, 60, 31536000));
  t.keys_dir = tokens.require_string("keys_dir");
  t.active_kid = tokens.require_string("active_kid");
  tokens.reject_unknown_keys();

  auto passwords = root.get_object("passwords");
  auto& p = out.passwords;
  // Lower bounds keep tests fast without allowing a production config below libsodium's minimum.
  p.ops_limit = static_cast<int>(passwords.get_int("ops_limit", p.ops_limit, 1, 10));
  p.mem_limit_kib =
      static_cast<int>(passwords.get_int("mem_limit_kib", p.mem_limit_kib, 8, 4 * 1024 * 1024));
  passwords.reject_unknown_keys();

  root.reject_unknown_keys();
  return out;
}

}  // namespace trellis::users
