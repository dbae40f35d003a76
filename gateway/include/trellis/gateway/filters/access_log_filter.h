// One log line per request, written when the response is ready: method, route template, status,
// latency, sizes, user and upstream. Never the query string or headers (they may carry secrets).
#pragma once

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class AccessLogFilter final : public Filter {
 public:
  std::string_view name() const override { return "access_log"; }
  void on_request(const ExchangePtr& exchange) override { exchange->next(); }
  void on_response(Exchange& exchange) override;
};

}  // namespace trellis::gateway
