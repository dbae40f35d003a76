#include "trellis/notifications/config.h"

#include <unistd.h>

#include "trellis/common/config.h"

namespace trellis::notifications {
namespace {

constexpr int kDayMs = 86400000;

int read_int(config::ObjectReader& reader, const std::string& key, int value, int min, int max) {
  return static_cast<int>(reader.get_int(key, value, min, max));
}

std::string non_empty(config::ObjectReader& reader, const std::string& block,
                      const std::string& key, const std::string& value) {
  auto text = reader.get_string(key, value);
  if (text.empty())
    throw config::ConfigError("notifications." + block + "." + key + ": must not be empty");
  return text;
}

std::string default_consumer_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    return "notifications-" + std::to_string(getpid());
  return std::string(host) + "-" + std::to_string(getpid());
}

void read_consumer(config::ObjectReader r, ConsumerConfig& c) {
  c.stream = non_empty(r, "consumer", "stream", c.stream);
  c.group = non_empty(r, "consumer", "group", c.group);
  c.consumer = r.get_string("consumer", c.consumer);
  if (c.consumer.empty()) c.consumer = default_consumer_name();
  c.start_id = r.get_string("start_id", c.start_id);
  if (c.start_id != "0" && c.start_id != "$") {
    throw config::ConfigError("notifications.consumer.start_id: must be \"0\" or \"$\"");
  }
  c.batch = read_int(r, "batch", c.batch, 1, 10000);
  c.block_ms = read_int(r, "block_ms", c.block_ms, 10, 10000);
  c.claim_idle_ms = read_int(r, "claim_idle_ms", c.claim_idle_ms, 100, kDayMs);
  c.claim_interval_ms = read_int(r, "claim_interval_ms", c.claim_interval_ms, 100, kDayMs);
  c.max_deliveries = read_int(r, "max_deliveries", c.max_deliveries, 1, 100);
  c.dead_letter_stream = non_empty(r, "consumer", "dead_letter_stream", c.dead_letter_stream);
  c.backoff_max_ms = read_int(r, "backoff_max_ms", c.backoff_max_ms, 100, 600000);
  r.reject_unknown_keys();
}

void read_push(config::ObjectReader r, PushConfig& p) {
  p.stream = non_empty(r, "push", "stream", p.stream);
  p.user_stream_prefix = non_empty(r, "push", "user_stream_prefix", p.user_stream_prefix);
  p.stream_maxlen = read_int(r, "stream_maxlen", p.stream_maxlen, 1000, 1000000000);
  p.user_stream_maxlen = read_int(r, "user_stream_maxlen", p.user_stream_maxlen, 10, 1000000);
  p.user_stream_ttl_s = read_int(r, "user_stream_ttl_s", p.user_stream_ttl_s, 60, 365 * 86400);
  r.reject_unknown_keys();
}

}  // namespace

Config load_config(const std::string& path) {
  auto merged = config::load_with_env(path, "TRELLIS_NOTIFICATIONS");
  config::ObjectReader root(merged, "notifications");
  Config out;
  out.effective_json = config::redact(merged).dump();

  service::read_runtime_settings(root, out);
  service::read_database_settings(root.get_object("database"), out.database,
                                  "trellis_notifications");
  out.migrate_on_start = root.get_bool("migrate_on_start", out.migrate_on_start);
  service::read_redis_settings(root.get_object("redis"), out.redis);
  read_consumer(root.get_object("consumer"), out.consumer);
  read_push(root.get_object("push"), out.push);

  root.reject_unknown_keys();
  return out;
}

}  // namespace trellis::notifications
