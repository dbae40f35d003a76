// Endpoints the gateway answers itself: GET /healthz (the process is alive), GET /readyz (every
// dependency reachable; 503 otherwise) and GET /openapi.json (generated at build time).
#pragma once

#include <string_view>

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class Readiness;

class LocalEndpointsFilter final : public Filter {
 public:
  LocalEndpointsFilter(const Readiness& readiness, std::string_view openapi_json)
      : readiness_(readiness), openapi_json_(openapi_json) {}
  std::string_view name() const override { return "local_endpoints"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  const Readiness& readiness_;
  std::string_view openapi_json_;
};

}  // namespace trellis::gateway
