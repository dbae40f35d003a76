// The admin listener's only filter: GET /metrics (Prometheus text), /healthz and /readyz. It runs
// on its own port so that metrics are never exposed on the public one.
#pragma once

#include "trellis/common/metrics.h"
#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class Readiness;

class AdminEndpointsFilter final : public Filter {
 public:
  AdminEndpointsFilter(const metrics::Registry& registry, const Readiness& readiness)
      : registry_(registry), readiness_(readiness) {}
  std::string_view name() const override { return "admin_endpoints"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  const metrics::Registry& registry_;
  const Readiness& readiness_;
};

}  // namespace trellis::gateway
