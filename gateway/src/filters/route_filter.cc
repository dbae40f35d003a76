#include "trellis/gateway/filters/route_filter.h"

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

void RouteFilter::on_request(const ExchangePtr& exchange) {
  auto match = routes_.match(exchange->request.method, exchange->request.path);
  if (match.route) {
    for (const auto& [pattern, limit] : body_limits_) {
      if (route_pattern_matches(pattern, match.route->path.text) &&
          exchange->request.body.size() > limit) {
        exchange->context.route = match.route;
        exchange->respond_error(
            413, "payload_too_large",
            "request body exceeds " + std::to_string(limit) + " bytes for this route");
        return;
      }
    }
    exchange->context.route = match.route;
    exchange->context.path_params = std::move(match.params);
    exchange->next();
    return;
  }
  if (match.allowed_methods.empty()) {
    exchange->respond_error(404, "not_found", "no route for " + exchange->request.path);
    return;
  }
  std::string allow;
  for (const auto& method : match.allowed_methods) {
    if (!allow.empty()) allow += ", ";
    allow += method;
  }
  auto response = json_error(405, "method_not_allowed",
                             exchange->request.method + " is not allowed here; use " + allow,
                             exchange->context.request_id);
  response.headers.emplace_back("Allow", allow);
  exchange->respond(std::move(response));
}

}  // namespace trellis::gateway
