#include "trellis/gateway/filters/cors_filter.h"

#include <algorithm>

namespace trellis::gateway {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

bool CorsFilter::allowed(std::string_view origin) const {
  for (const auto& candidate : settings_.allowed_origins) {
    if (candidate == "*" || candidate == origin) return true;
  }
  return false;
}

void CorsFilter::on_request(const ExchangePtr& exchange) {
  const auto& request = exchange->request;
  auto origin = request.header("origin");
  bool preflight = request.method == "OPTIONS" && !origin.empty() &&
                   !request.header("access-control-request-method").empty();
  if (!preflight) {
    exchange->next();
    return;
  }
  if (!allowed(origin)) {
    exchange->respond_error(403, "cors_origin_denied", "this origin may not call the API");
    return;
  }
  HttpResponse response;
  response.status = 204;
  response.headers.emplace_back("Access-Control-Allow-Methods", join(settings_.allowed_methods));
  response.headers.emplace_back("Access-Control-Allow-Headers", join(settings_.allowed_headers));
  response.headers.emplace_back("Access-Control-Max-Age", std::to_string(settings_.max_age_s));
  exchange->respond(std::move(response));  // on_response adds the origin headers
}

void CorsFilter::on_response(Exchange& exchange) {
  auto origin = exchange.request.header("origin");
  if (origin.empty() || settings_.allowed_origins.empty()) return;
  // Responses differ by Origin: caches must key on it.
  auto vary = exchange.response.header("vary");
  set_header(exchange.response.headers, "Vary",
             vary.empty() ? "Origin" : std::string(vary) + ", Origin");
  if (!allowed(origin)) return;
  bool any = !settings_.allow_credentials &&
             std::find(settings_.allowed_origins.begin(), settings_.allowed_origins.end(), "*") !=
                 settings_.allowed_origins.end();
  set_header(exchange.response.headers, "Access-Control-Allow-Origin",
             any ? "*" : std::string(origin));
  if (settings_.allow_credentials) {
    set_header(exchange.response.headers, "Access-Control-Allow-Credentials", "true");
  }
  set_header(exchange.response.headers, "Access-Control-Expose-Headers",
             "X-Request-Id, traceparent, RateLimit, RateLimit-Policy, Retry-After");
}

}  // namespace trellis::gateway
