#include "trellis/gateway/exchange.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace trellis::gateway {
namespace {

// Records the order in which filters see the request and the response.
class Recorder final : public Filter {
 public:
  Recorder(std::string name, std::vector<std::string>& trail, bool answer = false)
      : name_(std::move(name)), trail_(trail), answer_(answer) {}
  std::string_view name() const override { return name_; }
  void on_request(const ExchangePtr& exchange) override {
    trail_.push_back(name_ + ":request");
    if (answer_) {
      exchange->respond(json_response(201, "{}"));
    } else {
      exchange->next();
    }
  }
  void on_response(Exchange& exchange) override {
    trail_.push_back(name_ + ":response");
    exchange.response.headers.emplace_back("X-" + name_, "1");
  }

 private:
  std::string name_;
  std::vector<std::string>& trail_;
  bool answer_;
};

std::function<void(std::function<void()>)> inline_poster() {
  return [](std::function<void()> work) { work(); };
}

TEST(Exchange, ResponseUnwindsOnlyThroughFiltersThatRan) {
  std::vector<std::string> trail;
  std::vector<std::unique_ptr<Filter>> filters;
  filters.push_back(std::make_unique<Recorder>("a", trail));
  filters.push_back(std::make_unique<Recorder>("b", trail, /*answer=*/true));
  filters.push_back(std::make_unique<Recorder>("c", trail));
  HttpResponse sent;
  auto exchange = std::make_shared<Exchange>(
      HttpRequest{}, filters, [&](HttpResponse& r) { sent = r; }, inline_poster());
  exchange->start();
  EXPECT_EQ(trail,
            (std::vector<std::string>{"a:request", "b:request", "b:response", "a:response"}));
  EXPECT_EQ(sent.status, 201);
  EXPECT_EQ(sent.header("x-a"), "1");
  EXPECT_EQ(sent.header("X-c"), "");
}

TEST(Exchange, OnlyTheFirstAnswerIsSent) {
  std::vector<std::unique_ptr<Filter>> filters;
  int sends = 0;
  auto exchange = std::make_shared<Exchange>(
      HttpRequest{}, filters, [&](HttpResponse&) { ++sends; }, inline_poster());
  exchange->respond(json_response(200, "{}"));
  exchange->respond(json_response(500, "{}"));
  EXPECT_EQ(sends, 1);
  EXPECT_EQ(exchange->response.status, 200);
}

TEST(Exchange, ChainWithoutTerminalFilterAnswers500) {
  std::vector<std::string> trail;
  std::vector<std::unique_ptr<Filter>> filters;
  filters.push_back(std::make_unique<Recorder>("a", trail));
  HttpResponse sent;
  auto exchange = std::make_shared<Exchange>(
      HttpRequest{}, filters, [&](HttpResponse& r) { sent = r; }, inline_poster());
  exchange->context.request_id = "rid-1";
  exchange->start();
  EXPECT_EQ(sent.status, 500);
  auto body = nlohmann::json::parse(sent.body);
  EXPECT_EQ(body["code"], "internal");
  EXPECT_EQ(body["request_id"], "rid-1");
}

TEST(HttpTypes, HeaderLookupIsCaseInsensitive) {
  HeaderList headers{{"Content-Type", "application/json"}};
  EXPECT_EQ(find_header(headers, "content-type"), "application/json");
  set_header(headers, "CONTENT-TYPE", "text/plain");
  EXPECT_EQ(headers.size(), 1u);
  EXPECT_EQ(find_header(headers, "Content-Type"), "text/plain");
}

TEST(HttpTypes, JsonErrorHasCodeMessageAndRequestId) {
  auto response = json_error(404, "not_found", "no route for /x", "r-1");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.header("content-type"), "application/json");
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body,
            (nlohmann::json{
                {"code", "not_found"}, {"message", "no route for /x"}, {"request_id", "r-1"}}));
}

TEST(HttpTypes, JsonErrorSurvivesInvalidUtf8) {
  auto response = json_error(404, "not_found", "no route for /\xff", "r-1");
  EXPECT_NO_THROW(nlohmann::json::parse(response.body));
}

// A filter that puts a hold on the exchange and goes on, like the auth filter during the
// revocation check.
class Holder final : public Filter {
 public:
  std::string_view name() const override { return "holder"; }
  void on_request(const ExchangePtr& exchange) override {
    exchange->hold();
    exchange->next();
  }
};

struct HeldChain {
  std::vector<std::string> trail;
  std::vector<std::unique_ptr<Filter>> filters;
  std::vector<HttpResponse> sent;
  std::shared_ptr<Exchange> exchange;

  explicit HeldChain(bool answer) {
    filters.push_back(std::make_unique<Recorder>("a", trail));
    filters.push_back(std::make_unique<Holder>());
    filters.push_back(std::make_unique<Recorder>("b", trail, answer));
    exchange = std::make_shared<Exchange>(
        HttpRequest{}, filters, [this](HttpResponse& r) { sent.push_back(r); }, inline_poster());
  }
};

TEST(ExchangeHold, KeepsTheAnswerUntilReleasedThenSendsItOnce) {
  HeldChain chain(/*answer=*/true);
  chain.exchange->start();
  EXPECT_TRUE(chain.exchange->held());
  EXPECT_TRUE(chain.sent.empty()) << "answered before the check passed";
  EXPECT_FALSE(chain.exchange->responded());
  chain.exchange->respond(json_response(500, "{}"));  // a second answer: still only the first
  chain.exchange->release_hold();
  ASSERT_EQ(chain.sent.size(), 1u);
  EXPECT_EQ(chain.sent[0].status, 201);
  EXPECT_EQ(chain.trail,
            (std::vector<std::string>{"a:request", "b:request", "b:response", "a:response"}));
  chain.exchange->release_hold();
  EXPECT_EQ(chain.sent.size(), 1u);
}

TEST(ExchangeHold, AFailedCheckDropsTheKeptAnswerAndWorkAndSendsItsOwn) {
  HeldChain chain(/*answer=*/false);
  chain.exchange->start();  // reaches the end of the chain: its 500 is kept
  int work_runs = 0;
  chain.exchange->after_hold([&] { ++work_runs; });
  chain.exchange->fail_hold(json_response(401, R"({"code":"token_revoked"})"));
  ASSERT_EQ(chain.sent.size(), 1u);
  EXPECT_EQ(chain.sent[0].status, 401);
  EXPECT_EQ(work_runs, 0) << "work kept for after the check ran although it failed";
  chain.exchange->after_hold([&] { ++work_runs; });
  chain.exchange->release_hold();
  chain.exchange->respond(json_response(200, "{}"));
  EXPECT_EQ(work_runs, 0);
  EXPECT_EQ(chain.sent.size(), 1u);
}

TEST(ExchangeHold, WorkWaitsForTheReleaseOrRunsAtOnceWithoutAHold) {
  std::vector<std::unique_ptr<Filter>> filters;
  auto exchange = std::make_shared<Exchange>(
      HttpRequest{}, filters, [](HttpResponse&) {}, inline_poster());
  std::vector<int> runs;
  exchange->after_hold([&] { runs.push_back(1); });
  EXPECT_EQ(runs, std::vector<int>{1});
  exchange->hold();
  exchange->after_hold([&] { runs.push_back(2); });
  exchange->after_hold([&] { runs.push_back(3); });
  EXPECT_EQ(runs, std::vector<int>{1});
  exchange->release_hold();
  EXPECT_EQ(runs, (std::vector<int>{1, 2, 3}));
  exchange->after_hold([&] { runs.push_back(4); });
  EXPECT_EQ(runs, (std::vector<int>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace trellis::gateway
