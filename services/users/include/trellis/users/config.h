// Configuration of the users service; every key, its default and its limits are here.
#pragma once

#include <cstdint>
#include <string>

#include "trellis/common/pg_pool.h"

namespace trellis::users {

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  int timeout_ms = 500;  // connect and command timeout for revocation writes
};

struct TokenConfig {
  std::string issuer = "trellis";
  std::string audience = "trellis-api";
  int access_ttl_s = 900;       // 15 min: short, because revocation of access tokens is by list
  int refresh_ttl_s = 2592000;  // 30 days: lifetime of a session (refresh family)
  std::string keys_dir;         // every <kid>.pem (Ed25519) here is published in the JWKS
  std::string active_kid;       // the one that signs
};

struct PasswordConfig {
  // Argon2id; defaults are OWASP's recommendation (m=19 MiB, t=2, p=1).
  int ops_limit = 2;
  int mem_limit_kib = 19456;
};

struct Config {
  std::string grpc_listen = "127.0.0.1:50051";
  std::string log_level = "info";
  std::string metrics_listen;  // "host:port" of GET /metrics; empty: no metrics endpoint
  int drain_delay_ms = 0;      // SIGTERM: NOT_SERVING at once, still serving this long (for LBs)
  int grace_ms = 10000;        // then in-flight calls get this long to finish
  std::string otlp_endpoint;   // "http://host:4318/v1/traces"; empty: spans are not exported
  db::PgOptions database;
  bool migrate_on_start = true;
  RedisConfig redis;
  TokenConfig tokens;
  PasswordConfig passwords;
  std::string effective_json;  // the merged file + environment, secrets redacted, for the log
};

// Reads and validates a config file plus TRELLIS_USERS__* environment overrides; throws
// config::ConfigError naming the bad key.
Config load_config(const std::string& path);

}  // namespace trellis::users
