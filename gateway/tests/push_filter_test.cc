// The live-push filter (everything before the connection takeover) and the hub's bookkeeping.
#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include <gtest/gtest.h>

#include <list>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "trellis/gateway/filter_chain.h"
#include "trellis/gateway/filters/push_filter.h"
#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/push_hub.h"
#include "trellis/gateway/redis_client.h"

namespace trellis::gateway {
namespace {

class Terminal final : public Filter {
 public:
  std::string_view name() const override { return "terminal"; }
  void on_request(const ExchangePtr& exchange) override {
    reached = true;
    exchange->respond(json_response(200, "{}"));
  }
  bool reached = false;
};

struct Outcome {
  HttpResponse response;  // the answer, or the head handed to the takeover
  bool reached_terminal = false;
  bool taken_over = false;
  std::shared_ptr<Exchange> exchange;
};

class PushFilterTest : public ::testing::Test {
 protected:
  PushFilterTest() {
    keys_.update([&] {
      jwt::KeySet set;
      set.add(signing_.public_jwk());
      return set;
    }());
  }

  Outcome call(HttpRequest request) {
    auto& chain = chains_.emplace_back();  // exchanges keep a reference to their chain
    chain.push_back(std::make_unique<PushFilter>(hub_, AuthFilterConfig{"iss", "aud", 30}, keys_,
                                                 *redis_, [] { return int64_t{1'800'000'000}; }));
    auto terminal = std::make_unique<Terminal>();
    auto* terminal_ptr = terminal.get();
    chain.push_back(std::move(terminal));
    Outcome outcome;
    auto exchange = std::make_shared<Exchange>(
        std::move(request), chain, [&](HttpResponse& r) { outcome.response = r; },
        [](std::function<void()> work) { work(); },
        [&](HttpResponse& head, TakeoverHandler) {
          outcome.taken_over = true;
          outcome.response = head;
        });
    exchange->start();
    outcome.reached_terminal = terminal_ptr->reached;
    outcome.exchange = exchange;
    return outcome;
  }

  static HttpRequest stream(std::initializer_list<std::pair<std::string, std::string>> headers,
                            std::string query = "") {
    HttpRequest request;
    request.method = "GET";
    request.path = std::string(kPushPath);
    request.query = query;
    request.target = request.path + (query.empty() ? "" : "?" + query);
    for (const auto& [name, value] : headers) request.headers.emplace_back(name, value);
    return request;
  }

  std::string token() {
    jwt::Claims claims;
    claims.issuer = "iss";
    claims.audience = "aud";
    claims.subject = "user-1";
    claims.token_id = "jti-1";
    claims.issued_at = 1'800'000'000 - 10;
    claims.expires_at = 1'800'000'900;
    return signing_.sign(claims);
  }

  static std::string code_of(const HttpResponse& response) {
    return nlohmann::json::parse(response.body).value("code", "");
  }

  boost::asio::io_context io_;  // never runs: a request that reached Redis waits, never passes
  metrics::Registry registry_;
  std::shared_ptr<RedisClient> redis_ = RedisClient::create(io_, RedisOptions{});
  PushSettings settings_ = [] {
    PushSettings s;
    s.max_connections = 3;
    s.max_streams_per_user = 2;
    return s;
  }();
  PushHub hub_{io_, RedisOptions{}, *redis_, settings_, registry_};
  jwt::SigningKey signing_ = jwt::SigningKey::generate("k1");
  KeyCache keys_;
  std::list<FilterList> chains_;
};

const std::pair<std::string, std::string> kSse{"Accept", "text/event-stream"};
const std::pair<std::string, std::string> kConnection{"Connection", "Upgrade"};
const std::pair<std::string, std::string> kUpgrade{"Upgrade", "websocket"};

TEST_F(PushFilterTest, OtherPathsPassThrough) {
  HttpRequest request;
  request.method = "GET";
  request.path = "/v1/notifications";
  EXPECT_TRUE(call(request).reached_terminal);
}

TEST_F(PushFilterTest, OnlyGet) {
  auto request = stream({kSse});
  request.method = "POST";
  auto outcome = call(request);
  EXPECT_EQ(outcome.response.status, 405);
  EXPECT_EQ(outcome.response.header("allow"), "GET");
}

TEST_F(PushFilterTest, NeitherUpgradeNorEventStreamIs406) {
  auto outcome = call(stream({{"Accept", "application/json"}, {"Authorization", "Bearer x"}}));
  EXPECT_EQ(outcome.response.status, 406);
  EXPECT_EQ(code_of(outcome.response), "not_acceptable");
  EXPECT_FALSE(outcome.reached_terminal);
}

TEST_F(PushFilterTest, MalformedLastEventIdIs400) {
  auto sse = call(stream({kSse, {"Last-Event-ID", "12"}, {"Authorization", "Bearer " + token()}}));
  EXPECT_EQ(sse.response.status, 400);
  EXPECT_EQ(code_of(sse.response), "invalid_last_event_id");
  auto ws = call(stream({kConnection, kUpgrade}, "last_event_id=abc"));
  EXPECT_EQ(ws.response.status, 400);
  EXPECT_EQ(code_of(ws.response), "invalid_last_event_id");
}

TEST_F(PushFilterTest, SseNeedsAValidBearerToken) {
  auto missing = call(stream({kSse}));
  EXPECT_EQ(missing.response.status, 401);
  EXPECT_EQ(code_of(missing.response), "unauthenticated");
  auto invalid = call(stream({kSse, {"Authorization", "Bearer not.a.token"}}));
  EXPECT_EQ(invalid.response.status, 401);
  EXPECT_EQ(code_of(invalid.response), "invalid_token");
  EXPECT_FALSE(invalid.taken_over);
}

TEST_F(PushFilterTest, WebSocketTokenInSubprotocolIsVerified) {
  auto invalid =
      call(stream({kConnection,
                   kUpgrade,
                   {"Sec-WebSocket-Protocol", "trellis.notifications.v1, bearer.a.b.c"}}));
  EXPECT_EQ(invalid.response.status, 401);
  // A valid one goes to the revocation check (Redis never answers here): no answer, no takeover.
  auto valid =
      call(stream({kConnection,
                   kUpgrade,
                   {"Sec-WebSocket-Protocol", "trellis.notifications.v1, bearer." + token()}}));
  EXPECT_FALSE(valid.exchange->responded());
  EXPECT_FALSE(valid.taken_over);
}

TEST_F(PushFilterTest, WebSocketWithoutTokenIsTakenOverForFirstMessageAuth) {
  auto outcome = call(stream({kConnection, kUpgrade}));
  EXPECT_TRUE(outcome.taken_over);
  EXPECT_EQ(outcome.response.status, 101);
  EXPECT_EQ(hub_.open_streams(), 0);  // the session was never attached and is gone
}

TEST_F(PushFilterTest, NoKeysYetIs503) {
  KeyCache empty;
  FilterList chain;
  chain.push_back(
      std::make_unique<PushFilter>(hub_, AuthFilterConfig{"iss", "aud", 30}, empty, *redis_));
  HttpResponse answer;
  auto exchange = std::make_shared<Exchange>(
      stream({kSse, {"Authorization", "Bearer " + token()}}), chain,
      [&](HttpResponse& r) { answer = r; }, [](std::function<void()> work) { work(); });
  exchange->start();
  EXPECT_EQ(answer.status, 503);
  EXPECT_EQ(code_of(answer), "auth_unavailable");
}

// Records what the hub hands it.
class FakeSession final : public PushSession {
 public:
  void deliver(PushMessagePtr message) override { delivered.push_back(message->id); }
  void end(PushEnd reason) override { ended = reason; }
  std::vector<std::string> delivered;
  std::optional<PushEnd> ended;
};

TEST_F(PushFilterTest, HubCapsDispatchesPerUserAndDrains) {
  auto counter = hub_.admission_counter();
  EXPECT_EQ(hub_.admit(), PushAdmission::kAdmitted);
  EXPECT_EQ(hub_.admit(), PushAdmission::kAdmitted);
  EXPECT_EQ(hub_.admit(), PushAdmission::kAdmitted);
  EXPECT_EQ(hub_.admit(), PushAdmission::kTooManyStreams);  // max_connections = 3
  --*counter;
  EXPECT_EQ(hub_.admit(), PushAdmission::kAdmitted);
  *counter = 0;

  auto a1 = std::make_shared<FakeSession>(), a2 = std::make_shared<FakeSession>();
  auto a3 = std::make_shared<FakeSession>(), b = std::make_shared<FakeSession>();
  EXPECT_EQ(hub_.bind("a", a1), PushAdmission::kAdmitted);
  EXPECT_EQ(hub_.bind("a", a2), PushAdmission::kAdmitted);
  EXPECT_EQ(hub_.bind("a", a3), PushAdmission::kTooManyForUser);  // max_streams_per_user = 2
  EXPECT_EQ(hub_.bind("b", b), PushAdmission::kAdmitted);

  hub_.dispatch("a", make_push_message("1-0", "{}"));
  hub_.dispatch("b", make_push_message("2-0", "{}"));
  hub_.dispatch("nobody", make_push_message("3-0", "{}"));
  EXPECT_EQ(a1->delivered, std::vector<std::string>{"1-0"});
  EXPECT_EQ(a2->delivered, std::vector<std::string>{"1-0"});
  EXPECT_EQ(b->delivered, std::vector<std::string>{"2-0"});

  hub_.unbind("a", a1.get());
  EXPECT_EQ(hub_.bind("a", a3), PushAdmission::kAdmitted);  // room again
  a2.reset();  // a destroyed session frees its place too
  auto a4 = std::make_shared<FakeSession>();
  EXPECT_EQ(hub_.bind("a", a4), PushAdmission::kAdmitted);
  EXPECT_EQ(hub_.bind("a", std::make_shared<FakeSession>()), PushAdmission::kTooManyForUser);

  auto waiting_for_auth = std::make_shared<FakeSession>();
  hub_.track_unbound(waiting_for_auth);
  hub_.track_unbound(std::make_shared<FakeSession>());  // already gone: skipped
  hub_.drain();
  EXPECT_EQ(waiting_for_auth->ended, PushEnd::kShutdown);
  EXPECT_EQ(a3->ended, PushEnd::kShutdown);
  EXPECT_EQ(b->ended, PushEnd::kShutdown);
  EXPECT_FALSE(a1->ended);
  EXPECT_EQ(hub_.admit(), PushAdmission::kDraining);
  EXPECT_EQ(hub_.bind("c", std::make_shared<FakeSession>()), PushAdmission::kDraining);
}

}  // namespace
}  // namespace trellis::gateway
