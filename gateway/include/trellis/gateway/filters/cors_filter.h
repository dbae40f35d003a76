// CORS for browser clients: preflight requests (OPTIONS + Access-Control-Request-Method) are
// answered here, before routing and authentication; responses to allowed origins carry
// Access-Control-Allow-Origin. Origins are an explicit list (or "*" for any, never with
// credentials).
#pragma once

#include <string>
#include <vector>

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

struct CorsSettings {
  std::vector<std::string> allowed_origins;  // exact "https://app.example.com", or "*"; empty: off
  std::vector<std::string> allowed_headers = {"Authorization",     "Content-Type",
                                              "Idempotency-Key",   "X-Request-Id",
                                              "X-Request-Timeout", "traceparent"};
  std::vector<std::string> allowed_methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  int max_age_s = 600;
  bool allow_credentials = false;
};

class CorsFilter final : public Filter {
 public:
  explicit CorsFilter(CorsSettings settings) : settings_(std::move(settings)) {}
  std::string_view name() const override { return "cors"; }
  void on_request(const ExchangePtr& exchange) override;
  void on_response(Exchange& exchange) override;

 private:
  bool allowed(std::string_view origin) const;
  CorsSettings settings_;
};

}  // namespace trellis::gateway
