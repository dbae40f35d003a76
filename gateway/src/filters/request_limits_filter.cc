#include "trellis/gateway/filters/request_limits_filter.h"

namespace trellis::gateway {

void RequestLimitsFilter::on_request(const ExchangePtr& exchange) {
  switch (exchange->request.framing_error_status) {
    case 0:
      exchange->next();
      return;
    case 413:
      exchange->respond_error(413, "payload_too_large",
                              "request body exceeds " + std::to_string(max_body_bytes_) + " bytes");
      return;
    case 431:
      exchange->respond_error(431, "headers_too_large", "request header block is too large");
      return;
    default:
      exchange->respond_error(400, "bad_request", "malformed HTTP request");
      return;
  }
}

}  // namespace trellis::gateway
