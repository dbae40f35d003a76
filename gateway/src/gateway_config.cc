#include "trellis/gateway/gateway_config.h"

#include "trellis/common/config.h"
#include "trellis/common/log.h"

#include <algorithm>
#include <set>

namespace trellis::gateway {

GatewayConfig load_gateway_config(const std::string& path) {
  auto merged = config::load_with_env(path, "TRELLIS_GATEWAY");
  config::ObjectReader root(merged, "gateway");
  GatewayConfig out;
  out.effective_json = config::redact(merged).dump();

  auto listen = root.get_object("listen");
  out.listen_address = listen.get_string("address", out.listen_address);
  out.listen_port = static_cast<int>(listen.get_int("port", out.listen_port, 0, 65535));
  listen.reject_unknown_keys();

  auto admin = root.get_object("admin");
  out.admin_address = admin.get_string("address", out.admin_address);
  if (admin.has("port")) out.admin_port = static_cast<int>(admin.get_int("port", 0, 0, 65535));
  admin.reject_unknown_keys();

  out.io_threads = static_cast<int>(root.get_int("io_threads", out.io_threads, 1, 256));
  out.log_level = root.get_string("log_level", out.log_level);
  log::Level ignored;
  if (!log::parse_level(out.log_level, ignored)) {
    throw config::ConfigError("gateway.log_level: must be debug, info, warn or error");
  }

  auto limits = root.get_object("limits");
  out.max_body_bytes = static_cast<size_t>(
      limits.get_int("max_body_bytes", static_cast<int64_t>(out.max_body_bytes), 0, 64 << 20));
  out.max_header_bytes = static_cast<size_t>(limits.get_int(
      "max_header_bytes", static_cast<int64_t>(out.max_header_bytes), 1024, 1 << 20));
  out.idle_timeout_ms =
      static_cast<int>(limits.get_int("idle_timeout_ms", out.idle_timeout_ms, 100, 3600000));
  out.request_read_timeout_ms = static_cast<int>(
      limits.get_int("request_read_timeout_ms", out.request_read_timeout_ms, 100, 600000));
  out.header_timeout_ms =
      static_cast<int>(limits.get_int("header_timeout_ms", out.header_timeout_ms, 100, 600000));
  out.max_connections =
      static_cast<int>(limits.get_int("max_connections", out.max_connections, 1, 10000000));
  out.gzip_min_bytes = static_cast<size_t>(
      limits.get_int("gzip_min_bytes", static_cast<int64_t>(out.gzip_min_bytes), 0, 1 << 30));
  auto body_limits = limits.get_object("route_body_bytes");
  auto body_limit_items = merged.value("limits", nlohmann::json::object())
                              .value("route_body_bytes", nlohmann::json::object());
  for (const auto& [pattern, value] : body_limit_items.items()) {
    out.route_body_limits[pattern] = static_cast<size_t>(
        body_limits.get_int(pattern, 0, 0, static_cast<int64_t>(out.max_body_bytes)));
  }
  body_limits.reject_unknown_keys();
  limits.reject_unknown_keys();

  out.default_timeout_ms =
      static_cast<int>(root.get_int("default_timeout_ms", out.default_timeout_ms, 1, 600000));

  auto upstreams = root.get_object("upstreams");
  for (const auto& name : root.object_keys("upstreams")) {
    auto upstream = upstreams.get_object(name);
    out.upstreams[name] = upstream.require_string("target");
    UpstreamPolicy policy;
    policy.max_in_flight =
        static_cast<int>(upstream.get_int("max_in_flight", policy.max_in_flight, 1, 1000000));
    policy.max_retries =
        static_cast<int>(upstream.get_int("max_retries", policy.max_retries, 0, 10));
    policy.retry_backoff_ms =
        static_cast<int>(upstream.get_int("retry_backoff_ms", policy.retry_backoff_ms, 1, 10000));
    policy.retry_budget_ratio =
        static_cast<double>(upstream.get_int("retry_budget_percent", 20, 0, 100)) / 100.0;
    policy.breaker_failures =
        static_cast<int>(upstream.get_int("breaker_failures", policy.breaker_failures, 1, 1000000));
    policy.breaker_open_ms =
        static_cast<int>(upstream.get_int("breaker_open_ms", policy.breaker_open_ms, 1, 3600000));
    out.upstream_policies[name] = policy;
    upstream.reject_unknown_keys();
  }

  auto redis = root.get_object("redis");
  out.redis_host = redis.get_string("host", out.redis_host);
  out.redis_port = static_cast<int>(redis.get_int("port", out.redis_port, 1, 65535));
  out.redis_command_timeout_ms =
      static_cast<int>(redis.get_int("command_timeout_ms", out.redis_command_timeout_ms, 1, 60000));
  out.redis_tracked_keys =
      static_cast<int>(redis.get_int("tracked_keys", out.redis_tracked_keys, 0, 10000000));
  out.redis_tracking_heartbeat_ms = static_cast<int>(
      redis.get_int("tracking_heartbeat_ms", out.redis_tracking_heartbeat_ms, 10, 60000));
  redis.reject_unknown_keys();

  auto shutdown = root.get_object("shutdown");
  out.drain_delay_ms =
      static_cast<int>(shutdown.get_int("drain_delay_ms", out.drain_delay_ms, 0, 600000));
  out.grace_ms = static_cast<int>(shutdown.get_int("grace_ms", out.grace_ms, 0, 600000));
  shutdown.reject_unknown_keys();

  auto limits_block = root.get_object("rate_limits");
  auto& rl = out.rate_limits;
  rl.replicas = static_cast<int>(limits_block.get_int("replicas", rl.replicas, 1, 1000));
  rl.trusted_proxies = limits_block.get_string_list("trusted_proxies", rl.trusted_proxies);
  try {
    ClientAddressResolver check(rl.trusted_proxies);
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(std::string("gateway.rate_limits.trusted_proxies: ") + e.what());
  }
  std::set<std::string> names;
  for (auto& item : limits_block.get_object_list("policies")) {
    RateLimitPolicy policy;
    policy.name = item.require_string("name");
    if (policy.name.empty() || policy.name.find_first_of("\"\\ ,;:") != std::string::npos ||
        !names.insert(policy.name).second) {
      throw config::ConfigError(item.where() +
                                ".name: must be unique, without spaces, quotes, ,;:");
    }
    auto key = item.get_string("key", "ip");
    if (key == "ip")
      policy.key = RateLimitKey::kClientIp;
    else if (key == "user")
      policy.key = RateLimitKey::kUser;
    else if (key == "api_key")
      policy.key = RateLimitKey::kApiKey;
    else
      throw config::ConfigError(item.where() + ".key: must be ip, user or api_key");
    policy.limit = item.get_int("limit", policy.limit, 1, 1000000000);
    policy.window_s = item.get_int("window_s", policy.window_s, 1, 86400 * 7);
    policy.burst = item.get_int("burst", std::min<int64_t>(policy.limit, 1), 1, policy.limit);
    policy.routes = item.get_string_list("routes", policy.routes);
    item.reject_unknown_keys();
    rl.policies.push_back(std::move(policy));
  }
  limits_block.reject_unknown_keys();

  auto cors = root.get_object("cors");
  out.cors.allowed_origins = cors.get_string_list("allowed_origins", out.cors.allowed_origins);
  out.cors.allowed_headers = cors.get_string_list("allowed_headers", out.cors.allowed_headers);
  out.cors.max_age_s = static_cast<int>(cors.get_int("max_age_s", out.cors.max_age_s, 0, 86400));
  out.cors.allow_credentials = cors.get_bool("allow_credentials", out.cors.allow_credentials);
  if (out.cors.allow_credentials &&
      std::find(out.cors.allowed_origins.begin(), out.cors.allowed_origins.end(), "*") !=
          out.cors.allowed_origins.end()) {
    throw config::ConfigError("gateway.cors: allow_credentials cannot be used with origin \"*\"");
  }
  cors.reject_unknown_keys();

  auto cache = root.get_object("cache");
  out.cache.l1_max_bytes = static_cast<size_t>(
      cache.get_int("l1_max_bytes", static_cast<int64_t>(out.cache.l1_max_bytes), 0, 1LL << 36));
  for (auto& item : cache.get_object_list("routes")) {
    CacheRoute route;
    route.route = item.require_string("route");
    route.ttl_s = static_cast<int>(item.get_int("ttl_s", route.ttl_s, 1, 86400));
    route.per_user = item.get_bool("per_user", route.per_user);
    route.invalidated_by = item.get_string_list("invalidated_by", {});
    for (const auto& rule : route.invalidated_by) {
      if (rule.find(' ') == std::string::npos) {
        throw config::ConfigError(item.where() + ".invalidated_by: write \"METHOD /route\"");
      }
    }
    item.reject_unknown_keys();
    out.cache.routes.push_back(std::move(route));
  }
  for (auto& item : cache.get_object_list("invalidation_streams")) {
    CacheInvalidationStream stream;
    stream.stream = item.require_string("stream");
    stream.user_field = item.get_string("user_field", stream.user_field);
    stream.routes = item.get_string_list("routes", {});
    item.reject_unknown_keys();
    out.cache.invalidation_streams.push_back(std::move(stream));
  }
  cache.reject_unknown_keys();

  auto push = root.get_object("push");
  auto& ps = out.push;
  ps.enabled = push.get_bool("enabled", ps.enabled);
  ps.stream = push.get_string("stream", ps.stream);
  ps.user_stream_prefix = push.get_string("user_stream_prefix", ps.user_stream_prefix);
  if (ps.stream.empty() || ps.user_stream_prefix.empty()) {
    throw config::ConfigError("gateway.push: stream and user_stream_prefix must not be empty");
  }
  ps.heartbeat_ms = static_cast<int>(push.get_int("heartbeat_ms", ps.heartbeat_ms, 100, 600000));
  ps.auth_timeout_ms =
      static_cast<int>(push.get_int("auth_timeout_ms", ps.auth_timeout_ms, 100, 600000));
  ps.revocation_check_ms =
      static_cast<int>(push.get_int("revocation_check_ms", ps.revocation_check_ms, 100, 3600000));
  ps.max_replay = static_cast<int>(push.get_int("max_replay", ps.max_replay, 0, 100000));
  ps.max_queued_messages =
      static_cast<int>(push.get_int("max_queued_messages", ps.max_queued_messages, 1, 1000000));
  ps.max_queued_bytes = static_cast<size_t>(
      push.get_int("max_queued_bytes", static_cast<int64_t>(ps.max_queued_bytes), 1024, 1LL << 30));
  ps.max_connections =
      static_cast<int>(push.get_int("max_connections", ps.max_connections, 1, 10000000));
  ps.max_streams_per_user =
      static_cast<int>(push.get_int("max_streams_per_user", ps.max_streams_per_user, 1, 100000));
  push.reject_unknown_keys();

  auto tracing = root.get_object("tracing");
  out.otlp_endpoint = tracing.get_string("otlp_endpoint", out.otlp_endpoint);
  tracing.reject_unknown_keys();

  auto auth = root.get_object("auth");
  out.issuer = auth.get_string("issuer", out.issuer);
  out.audience = auth.get_string("audience", out.audience);
  out.jwks_upstream = auth.get_string("jwks_upstream", out.jwks_upstream);
  out.jwks_method = auth.get_string("jwks_method", out.jwks_method);
  out.jwks_refresh_s =
      static_cast<int>(auth.get_int("jwks_refresh_s", out.jwks_refresh_s, 1, 86400));
  out.leeway_s = static_cast<int>(auth.get_int("leeway_s", out.leeway_s, 0, 300));
  out.verified_cache_entries = static_cast<int>(
      auth.get_int("verified_cache_entries", out.verified_cache_entries, 0, 1000000));
  auth.reject_unknown_keys();

  root.reject_unknown_keys();
  if (!out.upstreams.count(out.jwks_upstream)) {
    throw config::ConfigError("gateway.auth.jwks_upstream: no upstream named " + out.jwks_upstream);
  }
  return out;
}

}  // namespace trellis::gateway
