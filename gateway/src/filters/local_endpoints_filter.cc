#include "trellis/gateway/filters/local_endpoints_filter.h"

#include "trellis/gateway/readiness.h"

namespace trellis::gateway {

void LocalEndpointsFilter::on_request(const ExchangePtr& exchange) {
  const auto& path = exchange->request.path;
  if (path != "/healthz" && path != "/readyz" && path != "/openapi.json") {
    exchange->next();
    return;
  }
  if (exchange->request.method != "GET") {
    auto response = json_error(405, "method_not_allowed", "use GET", exchange->context.request_id);
    response.headers.emplace_back("Allow", "GET");
    exchange->respond(std::move(response));
    return;
  }
  HttpResponse response;
  if (path == "/healthz") {
    response = json_response(200, R"({"status":"alive"})");
  } else if (path == "/readyz") {
    response = json_response(readiness_.ready() ? 200 : 503, readiness_.to_json());
  } else {
    response = json_response(200, std::string(openapi_json_));
  }
  response.headers.emplace_back("Cache-Control", "no-store");
  exchange->respond(std::move(response));
}

}  // namespace trellis::gateway
