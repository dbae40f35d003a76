// Each filter alone, driven through a one-filter chain with a terminal recorder.
#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "trellis/gateway/filters/admin_endpoints_filter.h"
#include "trellis/gateway/filters/auth_filter.h"
#include "trellis/gateway/filters/compression_filter.h"
#include "trellis/gateway/filters/cors_filter.h"
#include "trellis/gateway/filters/local_endpoints_filter.h"
#include "trellis/gateway/filters/metrics_filter.h"
#include "trellis/gateway/filters/request_id_filter.h"
#include "trellis/gateway/filters/request_limits_filter.h"
#include "trellis/gateway/filters/route_filter.h"
#include "trellis/gateway/filters/upstream_filter.h"
#include "trellis/gateway/filters/upstream_guard_filter.h"
#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/readiness.h"
#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/route_table.h"
#include "trellis/gateway/tracked_keys.h"

namespace trellis::gateway {
namespace {

// Answers 200 and records that the request got through.
class Terminal final : public Filter {
 public:
  std::string_view name() const override { return "terminal"; }
  void on_request(const ExchangePtr& exchange) override {
    reached = true;
    exchange->respond(json_response(200, "{}"));
  }
  bool reached = false;
};

struct FilterRun {
  HttpResponse response;
  bool reached_terminal = false;
  std::shared_ptr<Exchange> exchange;
};

FilterRun run(std::unique_ptr<Filter> filter, HttpRequest request,
              const std::function<void(Exchange&)>& prepare = nullptr) {
  std::vector<std::unique_ptr<Filter>> chain;
  chain.push_back(std::move(filter));
  auto terminal = std::make_unique<Terminal>();
  auto* terminal_ptr = terminal.get();
  chain.push_back(std::move(terminal));
  FilterRun result;
  auto exchange = std::make_shared<Exchange>(
      std::move(request), chain, [&](HttpResponse& r) { result.response = r; },
      [](std::function<void()> work) { work(); });
  if (prepare) prepare(*exchange);
  exchange->start();
  result.reached_terminal = terminal_ptr->reached;
  result.exchange = exchange;
  return result;
}

HttpRequest get(std::string path) {
  HttpRequest request;
  request.method = "GET";
  request.path = std::move(path);
  request.target = request.path;
  return request;
}

std::string code_of(const HttpResponse& response) {
  return nlohmann::json::parse(response.body).value("code", "");
}

TEST(RequestIdFilter, KeepsAWellFormedIdAndEchoesIt) {
  auto request = get("/x");
  request.headers.emplace_back("X-Request-Id", "abc-123");
  auto result = run(std::make_unique<RequestIdFilter>(), request);
  EXPECT_EQ(result.response.header("x-request-id"), "abc-123");
  EXPECT_EQ(result.response.header("traceparent").size(), 55u);
}

TEST(RequestIdFilter, ReplacesAMalformedId) {
  auto request = get("/x");
  request.headers.emplace_back("X-Request-Id", "bad id");
  auto result = run(std::make_unique<RequestIdFilter>(), request);
  EXPECT_EQ(result.response.header("x-request-id").size(), 32u);
}

TEST(RequestLimitsFilter, AnswersFramingErrors) {
  auto request = get("/x");
  request.framing_error_status = 413;
  auto result = run(std::make_unique<RequestLimitsFilter>(1024), request);
  EXPECT_FALSE(result.reached_terminal);
  EXPECT_EQ(result.response.status, 413);
  EXPECT_EQ(code_of(result.response), "payload_too_large");
  request.framing_error_status = 431;
  EXPECT_EQ(run(std::make_unique<RequestLimitsFilter>(1024), request).response.status, 431);
  request.framing_error_status = 0;
  EXPECT_TRUE(run(std::make_unique<RequestLimitsFilter>(1024), request).reached_terminal);
}

TEST(LocalEndpointsFilter, HealthReadinessAndOpenApi) {
  Readiness readiness;
  readiness.set("redis", false, "down");
  auto health = run(std::make_unique<LocalEndpointsFilter>(readiness, "{}"), get("/healthz"));
  EXPECT_EQ(health.response.status, 200);
  auto ready = run(std::make_unique<LocalEndpointsFilter>(readiness, "{}"), get("/readyz"));
  EXPECT_EQ(ready.response.status, 503);
  readiness.set("redis", true);
  ready = run(std::make_unique<LocalEndpointsFilter>(readiness, "{}"), get("/readyz"));
  EXPECT_EQ(ready.response.status, 200);
  readiness.set_draining();
  ready = run(std::make_unique<LocalEndpointsFilter>(readiness, "{}"), get("/readyz"));
  EXPECT_EQ(ready.response.status, 503);
  auto doc = run(std::make_unique<LocalEndpointsFilter>(readiness, R"({"openapi":"3.1.0"})"),
                 get("/openapi.json"));
  EXPECT_EQ(doc.response.body, R"({"openapi":"3.1.0"})");
  auto other = run(std::make_unique<LocalEndpointsFilter>(readiness, "{}"), get("/v1/x"));
  EXPECT_TRUE(other.reached_terminal);
}

TEST(RouteFilter, BindsTheRouteOr404Or405) {
  auto table = RouteTable::from_linked_protos();
  auto found = run(std::make_unique<RouteFilter>(table), get("/v1/users/abc"));
  EXPECT_TRUE(found.reached_terminal);
  ASSERT_NE(found.exchange->context.route, nullptr);
  EXPECT_EQ(found.exchange->context.path_params.at("id"), "abc");
  auto missing = run(std::make_unique<RouteFilter>(table), get("/v1/none"));
  EXPECT_EQ(missing.response.status, 404);
  auto request = get("/v1/auth/login");
  auto wrong = run(std::make_unique<RouteFilter>(table), request);
  EXPECT_EQ(wrong.response.status, 405);
  EXPECT_EQ(wrong.response.header("allow"), "POST");
}

class AuthFilterTest : public ::testing::Test {
 protected:
  AuthFilterTest() {
    keys_.update([&] {
      jwt::KeySet set;
      set.add(signing_.public_jwk());
      return set;
    }());
  }

  FilterRun call(const std::string& authorization, const std::string& path = "/v1/users/me") {
    auto match = table_.match("GET", path);
    auto request = get(path);
    if (!authorization.empty()) request.headers.emplace_back("Authorization", authorization);
    // The io_context never runs: a request that reached Redis would hang, not pass.
    auto filter = std::make_unique<AuthFilter>(AuthFilterConfig{"iss", "aud", 30}, keys_, tracked_,
                                               registry_, [] { return int64_t{1'800'000'000}; });
    return run(std::move(filter), request,
               [&](Exchange& exchange) { exchange.context.route = match.route; });
  }

  std::string token(int64_t expires_at, std::string audience = "aud") {
    jwt::Claims claims;
    claims.issuer = "iss";
    claims.audience = std::move(audience);
    claims.subject = "user-1";
    claims.token_id = "jti-1";
    claims.issued_at = expires_at - 900;
    claims.expires_at = expires_at;
    return signing_.sign(claims);
  }

  boost::asio::io_context io_;
  metrics::Registry registry_;
  std::shared_ptr<RedisClient> redis_ = RedisClient::create(io_, RedisOptions{});
  // Never started: nothing is held locally, every check goes to (the silent) Redis.
  TrackedKeys tracked_{io_, RedisOptions{}, redis_, {}, registry_};
  RouteTable table_ = RouteTable::from_linked_protos();
  jwt::SigningKey signing_ = jwt::SigningKey::generate("k1");
  KeyCache keys_;
};

TEST_F(AuthFilterTest, PublicRoutesPassWithoutAToken) {
  auto result = call("", "/.well-known/jwks.json");
  EXPECT_TRUE(result.reached_terminal);
}

TEST_F(AuthFilterTest, MissingOrForeignSchemeIs401Unauthenticated) {
  for (const char* header : {"", "Basic dXNlcjpwYXNz", "Bearer", "Bearer    "}) {
    auto result = call(header);
    EXPECT_EQ(result.response.status, 401) << header;
    EXPECT_EQ(code_of(result.response), "unauthenticated") << header;
    EXPECT_EQ(result.response.header("www-authenticate"), "Bearer realm=\"trellis\"");
  }
}

TEST_F(AuthFilterTest, InvalidTokensAre401InvalidTokenWithoutTouchingRedis) {
  for (const std::string& header :
       std::vector<std::string>{"Bearer not.a.token", "Bearer " + token(1'799'999'000),
                                "Bearer " + token(1'800'000'900, "other-aud")}) {
    auto result = call(header);
    EXPECT_EQ(result.response.status, 401) << header;
    EXPECT_EQ(code_of(result.response), "invalid_token") << header;
    EXPECT_NE(result.response.header("www-authenticate").find("invalid_token"), std::string::npos);
  }
}

TEST_F(AuthFilterTest, SchemeIsCaseInsensitiveAndAValidTokenGoesToTheRevocationCheck) {
  auto result = call("bearer " + token(1'800'000'900));
  // Verified: the chain goes on (the terminal filter ran, with the identity set), but its answer
  // is held until Redis confirms the token is not revoked, and Redis never answers here.
  EXPECT_TRUE(result.reached_terminal);
  EXPECT_EQ(result.exchange->context.identity.user_id, "user-1");
  EXPECT_TRUE(result.exchange->held());
  EXPECT_FALSE(result.exchange->responded());
}

TEST_F(AuthFilterTest, NoKeysYetIs503) {
  KeyCache empty;
  auto match = table_.match("GET", "/v1/users/me");
  auto request = get("/v1/users/me");
  request.headers.emplace_back("Authorization", "Bearer " + token(1'800'000'900));
  auto result = run(
      std::make_unique<AuthFilter>(AuthFilterConfig{"iss", "aud", 30}, empty, tracked_, registry_),
      request, [&](Exchange& exchange) { exchange.context.route = match.route; });
  EXPECT_EQ(result.response.status, 503);
  EXPECT_EQ(code_of(result.response), "auth_unavailable");
}

TEST(UpstreamFilterHelpers, JsonContentTypes) {
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(is_json_content_type("application/jsonp"));
  EXPECT_FALSE(is_json_content_type("text/plain"));
  EXPECT_FALSE(is_json_content_type(""));
}

TEST(UpstreamFilterHelpers, IdempotencyKeys) {
  EXPECT_TRUE(is_valid_idempotency_key("3f2a-xyz_1"));
  EXPECT_FALSE(is_valid_idempotency_key(""));
  EXPECT_FALSE(is_valid_idempotency_key("has space"));
  EXPECT_FALSE(is_valid_idempotency_key(std::string(256, 'a')));
  EXPECT_FALSE(is_valid_idempotency_key("caf\xc3\xa9"));
}

}  // namespace
}  // namespace trellis::gateway

namespace trellis::gateway {
namespace {

TEST(MetricsFilter, CountsByRouteTemplateMethodAndStatus) {
  metrics::Registry registry;
  auto table = RouteTable::from_linked_protos();
  auto match = table.match("GET", "/v1/users/abc");
  run(std::make_unique<MetricsFilter>(registry), get("/v1/users/abc"),
      [&](Exchange& exchange) { exchange.context.route = match.route; });
  auto scan = get("/wp-admin.php");
  scan.method = "BREW";
  run(std::make_unique<MetricsFilter>(registry), scan);
  auto text = registry.render();
  EXPECT_NE(
      text.find("http_requests_total{route=\"/v1/users/{id}\",method=\"GET\",status=\"200\"} 1"),
      std::string::npos)
      << text;
  // Client-controlled text never becomes a label value.
  EXPECT_NE(text.find("http_requests_total{route=\"-\",method=\"OTHER\",status=\"200\"} 1"),
            std::string::npos);
  EXPECT_EQ(text.find("wp-admin"), std::string::npos);
  EXPECT_NE(text.find("http_requests_in_flight 0"), std::string::npos);
}

// One filter across many requests: each (route, method, status) keeps its own count, whether its
// children were just resolved or found again.
TEST(MetricsFilter, KeepsCountingEachCombinationAcrossRequests) {
  struct StatusTerminal final : Filter {
    std::string_view name() const override { return "terminal"; }
    void on_request(const ExchangePtr& exchange) override {
      exchange->respond(json_response(status, "{}"));
    }
    int status = 200;
  };
  metrics::Registry registry;
  auto table = RouteTable::from_linked_protos();
  const auto* user = table.match("GET", "/v1/users/abc").route;
  const auto* orders = table.match("GET", "/v1/orders/abc").route;
  ASSERT_NE(user, nullptr);
  ASSERT_NE(orders, nullptr);
  std::vector<std::unique_ptr<Filter>> chain;
  chain.push_back(std::make_unique<MetricsFilter>(registry));
  auto terminal = std::make_unique<StatusTerminal>();
  auto* answer = terminal.get();
  chain.push_back(std::move(terminal));
  auto send = [&](const Route* route, std::string method, int status) {
    auto request = get("/x");
    request.method = std::move(method);
    answer->status = status;
    auto exchange = std::make_shared<Exchange>(
        std::move(request), chain, [](HttpResponse&) {},
        [](std::function<void()> work) { work(); });
    exchange->context.route = route;
    exchange->start();
  };
  for (int i = 0; i < 3; ++i) {
    send(user, "GET", 200);
    send(user, "GET", 404);
    send(orders, "GET", 200);
    send(user, "PATCH", 200);
    send(nullptr, "BREW", 404);
  }
  send(user, "GET", 200);
  auto text = registry.render();
  auto count = [&](const std::string& labels) {
    auto at = text.find("http_requests_total{" + labels + "} ");
    if (at == std::string::npos) return -1;
    return std::stoi(text.substr(text.find("} ", at) + 2));
  };
  EXPECT_EQ(count(R"(route="/v1/users/{id}",method="GET",status="200")"), 4) << text;
  EXPECT_EQ(count(R"(route="/v1/users/{id}",method="GET",status="404")"), 3);
  EXPECT_EQ(count(R"(route="/v1/orders/{id}",method="GET",status="200")"), 3);
  EXPECT_EQ(count(R"(route="/v1/users/{id}",method="PATCH",status="200")"), 3);
  EXPECT_EQ(count(R"(route="-",method="OTHER",status="404")"), 3);
  EXPECT_NE(
      text.find(R"(http_request_duration_seconds_count{route="/v1/users/{id}",method="GET"} 7)"),
      std::string::npos)
      << text;
}

TEST(AdminEndpointsFilter, ServesMetricsAndHealth) {
  metrics::Registry registry;
  registry.counter("x_total", "x").with({}).inc();
  Readiness readiness;
  readiness.set("redis", true);
  auto metrics = run(std::make_unique<AdminEndpointsFilter>(registry, readiness), get("/metrics"));
  EXPECT_EQ(metrics.response.status, 200);
  EXPECT_NE(metrics.response.body.find("x_total 1"), std::string::npos);
  EXPECT_FALSE(metrics.reached_terminal);
  auto ready = run(std::make_unique<AdminEndpointsFilter>(registry, readiness), get("/readyz"));
  EXPECT_EQ(ready.response.status, 200);
  auto other =
      run(std::make_unique<AdminEndpointsFilter>(registry, readiness), get("/v1/users/me"));
  EXPECT_EQ(other.response.status, 404);
}

}  // namespace
}  // namespace trellis::gateway

namespace trellis::gateway {
namespace {

TEST(CompressionFilter, AcceptEncodingParsing) {
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("br, GZIP;q=0.5"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0.000"));
  EXPECT_FALSE(accepts_gzip("br, deflate"));
  EXPECT_FALSE(accepts_gzip(""));
}

// Answers with a fixed body, as an upstream would.
class Answer final : public Filter {
 public:
  explicit Answer(std::string body) : body_(std::move(body)) {}
  std::string_view name() const override { return "answer"; }
  void on_request(const ExchangePtr& exchange) override {
    exchange->respond(json_response(200, body_));
  }

 private:
  std::string body_;
};

TEST(CompressionFilter, CompressesLargeJsonWhenAccepted) {
  auto request = get("/x");
  request.headers.emplace_back("Accept-Encoding", "gzip");
  std::string big = "{\"items\":[" + std::string(4000, '1') + "]}";
  std::vector<std::unique_ptr<Filter>> chain;
  chain.push_back(std::make_unique<CompressionFilter>(1024));
  chain.push_back(std::make_unique<Answer>(big));
  HttpResponse sent;
  auto exchange = std::make_shared<Exchange>(
      request, chain, [&](HttpResponse& r) { sent = r; }, [](std::function<void()> w) { w(); });
  exchange->start();
  EXPECT_EQ(sent.header("content-encoding"), "gzip");
  EXPECT_LT(sent.body.size(), big.size() / 10);
  EXPECT_EQ(static_cast<unsigned char>(sent.body[0]), 0x1f);  // gzip magic
  EXPECT_NE(sent.header("vary").find("Accept-Encoding"), std::string_view::npos);

  request.headers.clear();  // not accepted: sent as is, but still marked as varying
  HttpResponse plain;
  auto second = std::make_shared<Exchange>(
      request, chain, [&](HttpResponse& r) { plain = r; }, [](std::function<void()> w) { w(); });
  second->start();
  EXPECT_EQ(plain.body, big);
  EXPECT_EQ(plain.header("content-encoding"), "");
}

TEST(CorsFilter, PreflightAndOriginHeaders) {
  CorsSettings settings;
  settings.allowed_origins = {"https://app.example.com"};
  auto preflight = get("/v1/users/me");
  preflight.method = "OPTIONS";
  preflight.headers = {{"Origin", "https://app.example.com"},
                       {"Access-Control-Request-Method", "PATCH"}};
  auto ok = run(std::make_unique<CorsFilter>(settings), preflight);
  EXPECT_FALSE(ok.reached_terminal);  // answered before routing and auth
  EXPECT_EQ(ok.response.status, 204);
  EXPECT_EQ(ok.response.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_NE(ok.response.header("access-control-allow-methods").find("PATCH"), std::string::npos);
  preflight.headers[0].second = "https://evil.example.com";
  auto denied = run(std::make_unique<CorsFilter>(settings), preflight);
  EXPECT_EQ(denied.response.status, 403);
  EXPECT_EQ(denied.response.header("access-control-allow-origin"), "");
  auto simple = get("/v1/users/me");
  simple.headers = {{"Origin", "https://app.example.com"}};
  auto passed = run(std::make_unique<CorsFilter>(settings), simple);
  EXPECT_TRUE(passed.reached_terminal);
  EXPECT_EQ(passed.response.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(passed.response.header("vary"), "Origin");
}

}  // namespace
}  // namespace trellis::gateway

namespace trellis::gateway {
namespace {

// Never answers: keeps the request in flight until the test answers it.
class Hold final : public Filter {
 public:
  std::string_view name() const override { return "hold"; }
  void on_request(const ExchangePtr& exchange) override { held.push_back(exchange); }
  std::vector<ExchangePtr> held;
};

TEST(UpstreamGuardFilter, ShedsBeyondMaxInFlightAndOpensOnFailures) {
  auto table = RouteTable::from_linked_protos();
  auto match = table.match("GET", "/v1/users/me");
  metrics::Registry registry;
  UpstreamPolicy policy;
  policy.max_in_flight = 1;
  policy.breaker_failures = 1;
  auto guards = std::make_shared<UpstreamGuards>(
      std::map<std::string, UpstreamPolicy>{{"users", policy}}, registry);
  std::vector<std::unique_ptr<Filter>> chain;
  chain.push_back(std::make_unique<UpstreamGuardFilter>(guards));
  auto hold = std::make_unique<Hold>();
  auto* holder = hold.get();
  chain.push_back(std::move(hold));
  auto send = [&](HttpResponse& sent) {
    auto exchange = std::make_shared<Exchange>(
        get("/v1/users/me"), chain, [&](HttpResponse& r) { sent = r; },
        [](std::function<void()> w) { w(); });
    exchange->context.route = match.route;
    exchange->start();
  };
  HttpResponse first, second, third;
  send(first);
  ASSERT_EQ(holder->held.size(), 1u);
  send(second);
  EXPECT_EQ(second.status, 503);
  EXPECT_EQ(code_of(second), "overloaded");
  // The held request ends with the service unreachable: the breaker (threshold 1) opens.
  holder->held[0]->context.upstream_failed = true;
  holder->held[0]->respond(json_response(503, "{}"));
  send(third);
  EXPECT_EQ(third.status, 503);
  EXPECT_EQ(code_of(third), "circuit_open");
  EXPECT_FALSE(third.header("retry-after").empty());
  EXPECT_NE(registry.render().find("gateway_circuit_state{upstream=\"users\"} 2"),
            std::string::npos);
}

}  // namespace
}  // namespace trellis::gateway

namespace trellis::gateway {
namespace {

TEST(Readiness, StartupRequirementsDegradeInsteadOfFailingOnceMet) {
  Readiness readiness;
  readiness.set_startup_requirement("redis", false, "connection refused");
  EXPECT_FALSE(readiness.ready());  // never reachable yet: not ready
  readiness.set_startup_requirement("redis", true, "ok");
  EXPECT_TRUE(readiness.ready());
  readiness.set_startup_requirement("redis", false, "connection refused");
  EXPECT_TRUE(readiness.ready());
  EXPECT_NE(readiness.to_json().find("degraded: connection refused"), std::string::npos);
  readiness.set("upstream:users", false, "down");  // an ordinary check still fails readiness
  EXPECT_FALSE(readiness.ready());
}

}  // namespace
}  // namespace trellis::gateway
