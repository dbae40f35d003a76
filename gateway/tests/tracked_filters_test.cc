// The auth and cache filters over TrackedKeys and a real Redis (TRELLIS_TEST_REDIS_HOST/PORT):
// once the copies hold a request's keys, it is answered before start() returns — no Redis round
// trip, no hold — and a change written to Redis by someone else is honoured.
#include "trellis/gateway/filters/auth_filter.h"
#include "trellis/gateway/filters/cache_filter.h"
#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/route_table.h"
#include "trellis/gateway/tracked_keys.h"

#include "redis_test_support.h"

#include <nlohmann/json.hpp>

namespace trellis::gateway {
namespace {

using namespace trellis::testing::redis;

// Answers 200 with a body naming how often it was reached.
class Terminal final : public Filter {
 public:
  std::string_view name() const override { return "terminal"; }
  void on_request(const ExchangePtr& exchange) override {
    exchange->respond(json_response(200, "{\"calls\":" + std::to_string(++calls) + "}"));
  }
  std::atomic<int> calls{0};
};

class TrackedFiltersTest : public RedisClientTest {
 protected:
  void SetUp() override {
    RedisClientTest::SetUp();
    jwks_.update([&] {
      jwt::KeySet set;
      set.add(signing_.public_jwk());
      return set;
    }());
    reader_ = connected_client();
    tracked_ = std::make_unique<TrackedKeys>(
        io_.io, options_, reader_,
        TrackedKeysOptions{1000,
                           500,
                           {std::string(kRevokedKeyPrefix), std::string(kCacheGenerationPrefix)},
                           "trellis-test-filters-" + std::to_string(::getpid())},
        registry_);
    tracked_->start();
    ASSERT_TRUE(wait_until([&] { return tracked_->current(); }, 3s));
    CacheSettings cache;
    cache.routes.push_back({"/v1/users/me", 60, true, {}});
    chain_.push_back(std::make_unique<AuthFilter>(AuthFilterConfig{"iss", "aud", 30}, jwks_,
                                                  *tracked_, registry_));
    chain_.push_back(std::make_unique<CacheFilter>(cache, *reader_, *tracked_, registry_));
    auto terminal = std::make_unique<Terminal>();
    terminal_ = terminal.get();
    chain_.push_back(std::move(terminal));
    // The markers and the generation are this test's own: random ids.
    claims_.issuer = "iss";
    claims_.audience = "aud";
    claims_.subject = "user-" + trace::random_id_hex(8);
    claims_.token_id = trace::random_id_hex(16);
    claims_.session_id = "session-" + trace::random_id_hex(8);
    claims_.issued_at = std::time(nullptr);
    claims_.expires_at = claims_.issued_at + 900;
    // Deleted after the test (key() would prefix them).
    keys_.insert(revoked_token_key(claims_.token_id));
    keys_.insert(cache_generation_key("/v1/users/me", claims_.subject));
  }

  void TearDown() override {
    tracked_->stop();
    RedisClientTest::TearDown();
  }

  struct Outcome {
    bool answered_at_once = false;  // by the thread running start(), before it returned
    HttpResponse response;
  };

  // Runs GET /v1/users/me through auth → cache → terminal; waits for an asynchronous answer.
  Outcome call() {
    HttpRequest request;
    request.method = "GET";
    request.path = request.target = "/v1/users/me";
    request.headers.emplace_back("Authorization", "Bearer " + signing_.sign(claims_));
    struct Answer {
      std::promise<HttpResponse> response;
      std::atomic<bool> in_start{false};
      std::thread::id starter = std::this_thread::get_id();
      bool during_start = false;  // written by the sink, read after the promise
    };
    auto answer = std::make_shared<Answer>();
    auto exchange = std::make_shared<Exchange>(
        std::move(request), chain_,
        [answer](HttpResponse& response) {
          answer->during_start =
              answer->in_start.load() && std::this_thread::get_id() == answer->starter;
          answer->response.set_value(response);
        },
        [](std::function<void()> work) { work(); });
    exchange->context.route = table_.match("GET", "/v1/users/me").route;
    auto future = answer->response.get_future();
    answer->in_start = true;
    exchange->start();
    answer->in_start = false;
    Outcome outcome;
    if (future.wait_for(5s) != std::future_status::ready) {
      ADD_FAILURE() << "no answer";
      return outcome;
    }
    outcome.response = future.get();
    outcome.answered_at_once = answer->during_start;
    return outcome;
  }

  static std::string code_of(const HttpResponse& response) {
    return nlohmann::json::parse(response.body).value("code", "");
  }

  metrics::Registry registry_;
  KeyCache jwks_;
  jwt::SigningKey signing_ = jwt::SigningKey::generate("k1");
  jwt::Claims claims_;
  RouteTable table_ = RouteTable::from_linked_protos();
  std::shared_ptr<RedisClient> reader_;
  std::unique_ptr<TrackedKeys> tracked_;
  std::vector<std::unique_ptr<Filter>> chain_;
  Terminal* terminal_ = nullptr;
};

TEST_F(TrackedFiltersTest, ACachedAnswerNeedsNoRedisOnceTheCopiesHoldItsKeys) {
  auto first = call();
  EXPECT_FALSE(first.answered_at_once) << "the first request must have asked Redis";
  EXPECT_EQ(first.response.status, 200);
  EXPECT_EQ(first.response.header("x-cache"), "MISS");
  auto second = call();
  EXPECT_TRUE(second.answered_at_once) << "a hit on held copies waited for something";
  EXPECT_EQ(second.response.header("x-cache"), "HIT");
  EXPECT_EQ(second.response.body, first.response.body);
  EXPECT_EQ(terminal_->calls, 1);

  // Someone else bumps the generation (a write through another replica).
  admin_->command({"INCR", cache_generation_key("/v1/users/me", claims_.subject)});
  ASSERT_TRUE(wait_until(
      [&] { return !tracked_->lookup({cache_generation_key("/v1/users/me", claims_.subject)}); },
      3s));
  auto third = call();
  EXPECT_EQ(third.response.header("x-cache"), "MISS");
  EXPECT_EQ(terminal_->calls, 2);
  EXPECT_TRUE(call().answered_at_once);
}

TEST_F(TrackedFiltersTest, ARevocationWrittenToRedisIsHonouredAndThenAnsweredFromTheCopy) {
  EXPECT_EQ(call().response.status, 200);
  ASSERT_TRUE(call().answered_at_once);
  admin_->command({"SET", revoked_token_key(claims_.token_id), "1", "EX", "60"});
  ASSERT_TRUE(
      wait_until([&] { return !tracked_->lookup({revoked_token_key(claims_.token_id)}); }, 3s));
  auto refused = call();
  EXPECT_EQ(refused.response.status, 401);
  EXPECT_EQ(code_of(refused.response), "token_revoked");
  auto again = call();
  EXPECT_TRUE(again.answered_at_once) << "the revoked marker's copy was not kept";
  EXPECT_EQ(again.response.status, 401);
  EXPECT_EQ(code_of(again.response), "token_revoked");
}

}  // namespace
}  // namespace trellis::gateway
