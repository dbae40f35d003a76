// Matches the request against the routes declared in the .proto files: unknown path → 404,
// known path with another method → 405 with Allow.
#pragma once

#include <map>
#include <string>

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class RouteTable;

class RouteFilter final : public Filter {
 public:
  explicit RouteFilter(const RouteTable& routes, std::map<std::string, size_t> body_limits = {})
      : routes_(routes), body_limits_(std::move(body_limits)) {}
  std::string_view name() const override { return "route"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  const RouteTable& routes_;
  std::map<std::string, size_t> body_limits_;  // route pattern → bytes (413 beyond)
};

}  // namespace trellis::gateway
