// Configuration of the gateway; every key, its default and its limits are here.
#pragma once

#include <map>
#include <string>

#include "trellis/gateway/filters/cors_filter.h"
#include "trellis/gateway/push_protocol.h"
#include "trellis/gateway/rate_limit.h"
#include "trellis/gateway/response_cache.h"
#include "trellis/gateway/upstream_guard.h"

namespace trellis::gateway {

struct GatewayConfig {
  std::string listen_address = "127.0.0.1";
  int listen_port = 8080;
  // Admin listener (GET /metrics, /healthz, /readyz); disabled when admin.port is absent.
  std::string admin_address = "127.0.0.1";
  int admin_port = -1;
  int io_threads = 2;  // event loops, one thread each; connections are spread over them
  std::string log_level = "info";
  size_t max_body_bytes = 1048576;  // 1 MiB; larger bodies get 413
  size_t max_header_bytes = 16384;  // request line + headers; larger get 431; a chunk-size
                                    // line or trailer longer than this + 4 KiB gets 400
  // The three timeouts (100 ms minimum) are checked every tenth of the shortest one (10 ms to 1 s):
  // a connection is closed up to that much after its deadline.
  int idle_timeout_ms = 60000;          // keep-alive connection without a request is closed
  int request_read_timeout_ms = 15000;  // a request must arrive completely within this
  int header_timeout_ms = 10000;        // once a request started, its headers within this
  int max_connections = 10000;          // open client connections; more are closed at accept
  size_t gzip_min_bytes = 1024;  // responses at least this large are gzipped when accepted; 0: off
  int default_timeout_ms = 5000;
  // SIGTERM: /readyz turns 503 at once; requests are still accepted for drain_delay_ms (so that
  // load balancers notice), then the listener closes and in-flight requests get up to grace_ms.
  int drain_delay_ms = 0;
  int grace_ms = 10000;                          // upstream deadline of routes that set none
  std::map<std::string, std::string> upstreams;  // name → gRPC target (host:port, ipv4:a,b, dns:)
  std::map<std::string, UpstreamPolicy> upstream_policies;  // see upstream_guard.h
  // Redis (token revocation list).
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  int redis_command_timeout_ms = 250;
  // Local copies of revocation markers and cache generations, kept current by Redis' key
  // tracking (see tracked_keys.h): a cached answer then needs no Redis round trip. 0: off, every
  // request reads them from Redis.
  int redis_tracked_keys = 100000;
  int redis_tracking_heartbeat_ms = 500;  // copies unused after 3 heartbeats went missing
  // Access tokens.
  std::string issuer = "trellis";
  std::string audience = "trellis-api";
  std::string jwks_upstream = "users";
  std::string jwks_method = "/trellis.users.v1.AuthService/GetJwks";
  int jwks_refresh_s = 60;
  int leeway_s = 30;                   // clock skew tolerated on exp/nbf
  int verified_cache_entries = 10000;  // verified tokens remembered per verifier (0: off)
  // Rate limiting; no policies: no limiting. Example policy:
  // {"name": "per-ip", "key": "ip"|"user"|"api_key", "limit": 100, "window_s": 60, "burst": 20,
  //  "routes": ["*"]}
  RateLimitSettings rate_limits;
  // CORS: cors.allowed_origins (empty: no CORS headers), allowed_headers, max_age_s,
  // allow_credentials (refused together with "*").
  CorsSettings cors;
  // Response cache: {"l1_max_bytes": N, "routes": [{"route": "/v1/users/me", "ttl_s": 30,
  //  "per_user": true, "invalidated_by": ["PATCH /v1/users/me"]}]}
  CacheSettings cache;
  // Smaller body limits for some routes: {"/v1/auth/*": 4096}; the global limit still applies.
  std::map<std::string, size_t> route_body_limits;
  // Live push (GET /v1/notifications/stream): "push": {"enabled": true, "stream":
  // "trellis:notifications:push", "user_stream_prefix": "trellis:notifications:user:",
  // "heartbeat_ms": 15000, "auth_timeout_ms": 5000, "revocation_check_ms": 10000,
  // "max_replay": 1000, "max_queued_messages": 256, "max_queued_bytes": 1048576,
  // "max_connections": 10000, "max_streams_per_user": 16} (defaults; see push_protocol.h).
  PushSettings push;
  std::string otlp_endpoint;   // "http://host:4318/v1/traces"; empty: spans are not exported
  std::string effective_json;  // merged file + environment, secrets redacted, for the log
};

// Reads the file plus TRELLIS_GATEWAY__* environment overrides; throws config::ConfigError
// naming the bad key.
GatewayConfig load_gateway_config(const std::string& path);

}  // namespace trellis::gateway
