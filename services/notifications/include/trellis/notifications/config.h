// Configuration of the notifications service; every key, its default and its limits are here.
#pragma once

#include <string>

#include "trellis/common/pg_pool.h"
#include "trellis/common/service_config.h"

namespace trellis::notifications {

using RedisConfig = service::RedisSettings;  // the consumer's and the pusher's connection

// The `consumer` block: how order events are read from the Redis Stream.
struct ConsumerConfig {
  std::string stream = "trellis:events:orders";  // the stream the orders relay writes
  std::string group = "notifications";           // consumer group shared by every replica
  std::string consumer;          // this replica's name in the group; empty: <hostname>-<pid>
  std::string start_id = "0";    // where a new group starts: "0" (all retained) or "$" (new)
  int batch = 100;               // entries per XREADGROUP / XAUTOCLAIM (1..10000)
  int block_ms = 500;            // XREADGROUP BLOCK; also bounds shutdown time (10..10000)
  int claim_idle_ms = 30000;     // pending this long → a dead consumer's: claimed (100..1 day)
  int claim_interval_ms = 5000;  // how often XAUTOCLAIM runs (100..1 day)
  int max_deliveries = 5;        // a failing entry goes to the dead-letter stream at this (1..100)
  std::string dead_letter_stream = "trellis:events:orders:dead-letter";
  int backoff_max_ms = 5000;  // reconnect/retry backoff doubles up to this (100..600000)
};

// The `push` block: hand-off of new notifications to the gateways' live streams (see pusher.h).
struct PushConfig {
  std::string stream = "trellis:notifications:push";               // every gateway XREADs this
  std::string user_stream_prefix = "trellis:notifications:user:";  // + user id: resume log
  int stream_maxlen = 100000;      // XADD MAXLEN ~ of the fan-out stream (1000..1e9)
  int user_stream_maxlen = 1000;   // XADD MAXLEN ~ of each user's stream (10..1e6)
  int user_stream_ttl_s = 604800;  // a user's stream expires after this without news (60..1 year)
};

// The shared service settings (grpc, log_level, metrics, shutdown, tracing) plus these.
struct Config : service::RuntimeSettings {
  Config() { grpc_listen = "127.0.0.1:50053"; }
  db::PgOptions database;  // dbname and user default to trellis_notifications
  bool migrate_on_start = true;
  RedisConfig redis;
  ConsumerConfig consumer;
  PushConfig push;
  std::string effective_json;  // the merged file + environment, secrets redacted, for the log
};

// Reads and validates a config file plus TRELLIS_NOTIFICATIONS__* environment overrides; throws
// config::ConfigError naming the bad key.
Config load_config(const std::string& path);

}  // namespace trellis::notifications
