#include "trellis/gateway/filter_chain.h"

#include "trellis/gateway/filters/access_log_filter.h"
#include "trellis/gateway/filters/admin_endpoints_filter.h"
#include "trellis/gateway/filters/auth_filter.h"
#include "trellis/gateway/filters/cache_filter.h"
#include "trellis/gateway/filters/compression_filter.h"
#include "trellis/gateway/filters/cors_filter.h"
#include "trellis/gateway/filters/local_endpoints_filter.h"
#include "trellis/gateway/filters/metrics_filter.h"
#include "trellis/gateway/filters/push_filter.h"
#include "trellis/gateway/filters/rate_limit_filter.h"
#include "trellis/gateway/filters/request_id_filter.h"
#include "trellis/gateway/filters/request_limits_filter.h"
#include "trellis/gateway/filters/route_filter.h"
#include "trellis/gateway/filters/tracing_filter.h"
#include "trellis/gateway/filters/upstream_filter.h"
#include "trellis/gateway/filters/upstream_guard_filter.h"
#include "trellis/gateway/gateway_config.h"

namespace trellis::gateway {
namespace {

AuthFilterConfig auth_config(const GatewayConfig& config) {
  return {config.issuer, config.audience, config.leeway_s,
          static_cast<size_t>(config.verified_cache_entries)};
}

}  // namespace

// The order of the chain, in one place. Adding a filter is one line here.
FilterList build_filter_chain(GatewayServices& s) {
  FilterList chain;
  chain.push_back(std::make_unique<RequestIdFilter>());
  chain.push_back(std::make_unique<TracingFilter>(s.tracer));
  chain.push_back(std::make_unique<MetricsFilter>(s.metrics));
  chain.push_back(std::make_unique<AccessLogFilter>());
  chain.push_back(std::make_unique<CompressionFilter>(s.config.gzip_min_bytes));
  chain.push_back(std::make_unique<RequestLimitsFilter>(s.config.max_body_bytes));
  chain.push_back(std::make_unique<CorsFilter>(s.config.cors));
  chain.push_back(std::make_unique<LocalEndpointsFilter>(s.readiness, s.openapi_json));
  chain.push_back(std::make_unique<RouteFilter>(s.routes, s.config.route_body_limits));
  auto limits =
      std::make_shared<RateLimitState>(s.config.rate_limits, s.redis, s.readiness, s.metrics);
  chain.push_back(std::make_unique<RateLimitFilter>(RateLimitStage::kBeforeAuth, limits));
  // Answers GET /v1/notifications/stream itself (its own auth: the token may come as the first
  // WebSocket message) and hands the connection over; everything else goes on.
  if (s.push)
    chain.push_back(std::make_unique<PushFilter>(*s.push, auth_config(s.config), s.keys, s.redis));
  chain.push_back(
      std::make_unique<AuthFilter>(auth_config(s.config), s.keys, s.tracked, s.metrics));
  chain.push_back(std::make_unique<RateLimitFilter>(RateLimitStage::kAfterAuth, limits));
  chain.push_back(std::make_unique<CacheFilter>(s.config.cache, s.redis, s.tracked, s.metrics));
  auto guards = std::make_shared<UpstreamGuards>(s.config.upstream_policies, s.metrics);
  chain.push_back(std::make_unique<UpstreamGuardFilter>(guards));
  chain.push_back(
      std::make_unique<UpstreamFilter>(s.upstreams, s.config.default_timeout_ms, s.tracer, guards));
  return chain;
}

FilterList build_admin_chain(GatewayServices& s) {
  FilterList chain;
  chain.push_back(std::make_unique<RequestIdFilter>());
  chain.push_back(std::make_unique<AdminEndpointsFilter>(s.metrics, s.readiness));
  return chain;
}

}  // namespace trellis::gateway
