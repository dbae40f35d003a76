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

}  // namespace
}  // namespace trellis::gateway
