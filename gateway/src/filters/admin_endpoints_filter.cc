#include "trellis/gateway/filters/admin_endpoints_filter.h"

#include "trellis/gateway/readiness.h"

namespace trellis::gateway {

void AdminEndpointsFilter::on_request(const ExchangePtr& exchange) {
  const auto& path = exchange->request.path;
  if (exchange->request.method != "GET") {
    exchange->respond_error(405, "method_not_allowed", "use GET");
    return;
  }
  HttpResponse response;
  if (path == "/metrics") {
    response.status = 200;
    response.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    response.body = registry_.render();
  } else if (path == "/healthz") {
    response = json_response(200, R"({"status":"alive"})");
  } else if (path == "/readyz") {
    response = json_response(readiness_.ready() ? 200 : 503, readiness_.to_json());
  } else {
    exchange->respond_error(404, "not_found", "admin endpoints: /metrics, /healthz, /readyz");
    return;
  }
  exchange->respond(std::move(response));
}

}  // namespace trellis::gateway
