// Matches the request against the routes declared in the .proto files: unknown path → 404,
// known path with another method → 405 with Allow.
#pragma once

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class RouteTable;

class RouteFilter final : public Filter {
 public:
  explicit RouteFilter(const RouteTable& routes) : routes_(routes) {}
  std::string_view name() const override { return "route"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  const RouteTable& routes_;
};

}  // namespace trellis::gateway
