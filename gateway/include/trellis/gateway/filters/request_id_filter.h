// Gives every request an id (a well-formed client X-Request-Id is kept) and a W3C trace context
// (continued from traceparent or started), and echoes both on the response.
#pragma once

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class RequestIdFilter final : public Filter {
 public:
  std::string_view name() const override { return "request_id"; }
  void on_request(const ExchangePtr& exchange) override;
  void on_response(Exchange& exchange) override;
};

}  // namespace trellis::gateway
