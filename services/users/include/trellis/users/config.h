// Configuration of the users service; every key, its default and its limits are here.
#pragma once

#include <cstdint>
#include <string>

#include "trellis/common/pg_pool.h"
#include "trellis/common/service_config.h"

namespace trellis::users {

using RedisConfig = service::RedisSettings;  // revocation writes

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

// The shared service settings (grpc, log_level, metrics, shutdown, tracing) plus the users'.
struct Config : service::RuntimeSettings {
  Config() { grpc_listen = "127.0.0.1:50051"; }
  db::PgOptions database;  // dbname and user default to trellis_users
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
