// The ordered filter list of the gateway. The order is defined in one place, filter_chain.cc.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "trellis/common/metrics.h"
#include "trellis/common/tracing.h"
#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

struct GatewayConfig;
class RouteTable;
class Upstreams;
class RedisClient;
class KeyCache;
class Readiness;
class PushHub;
class TrackedKeys;

// What filters may use; owned by main and outliving every request.
struct GatewayServices {
  const GatewayConfig& config;
  const RouteTable& routes;
  Upstreams& upstreams;
  RedisClient& redis;
  TrackedKeys& tracked;  // local copies of revocation markers and cache generations
  const KeyCache& keys;
  Readiness& readiness;
  std::string_view openapi_json;
  metrics::Registry& metrics;
  tracing::Tracer& tracer;
  PushHub* push = nullptr;  // live push; null: GET /v1/notifications/stream is not served
};

using FilterList = std::vector<std::unique_ptr<Filter>>;

FilterList build_filter_chain(GatewayServices& services);
// The admin listener's chain (/metrics, /healthz, /readyz).
FilterList build_admin_chain(GatewayServices& services);

}  // namespace trellis::gateway
