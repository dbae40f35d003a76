// Answers requests the server could not read within the limits (body too large, header block too
// large) after they got a request id, so that they are logged and traceable like any other.
#pragma once

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class RequestLimitsFilter final : public Filter {
 public:
  explicit RequestLimitsFilter(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}
  std::string_view name() const override { return "request_limits"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  size_t max_body_bytes_;
};

}  // namespace trellis::gateway
