#include "trellis/gateway/transcoder.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "trellis/users/v1/users.pb.h"

namespace trellis::gateway {
namespace {

class TranscoderTest : public ::testing::Test {
 protected:
  const Route& route(const char* method, const char* path) {
    auto match = table.match(method, path);
    EXPECT_NE(match.route, nullptr) << method << " " << path;
    return *match.route;
  }
  RouteTable table = RouteTable::from_linked_protos();
};

TEST_F(TranscoderTest, BodyFieldsUseOriginalNames) {
  auto result =
      request_to_proto(route("POST", "/v1/auth/signup"),
                       R"({"email":"a@b.co","password":"pw","display_name":"Ann"})", "", {});
  ASSERT_TRUE(result.ok) << result.error.message;
  users::v1::SignupRequest request;
  ASSERT_TRUE(request.ParseFromString(result.payload));
  EXPECT_EQ(request.email(), "a@b.co");
  EXPECT_EQ(request.display_name(), "Ann");
}

TEST_F(TranscoderTest, EmptyBodyIsAnEmptyMessage) {
  auto result = request_to_proto(route("POST", "/v1/auth/logout"), "", "", {});
  ASSERT_TRUE(result.ok);
  EXPECT_TRUE(result.payload.empty());
}

TEST_F(TranscoderTest, MalformedJsonIsRejected) {
  const auto& signup = route("POST", "/v1/auth/signup");
  for (const char* body : {"{", "[1,2]", "\"text\"", "{\"email\": }", "{\"email\":\"a\"} x"}) {
    auto result = request_to_proto(signup, body, "", {});
    EXPECT_FALSE(result.ok) << body;
    EXPECT_EQ(result.error.code, "malformed_json") << body;
  }
}

TEST_F(TranscoderTest, UnknownFieldIsNamedInTheError) {
  auto result = request_to_proto(route("POST", "/v1/auth/signup"), R"({"emial":"x"})", "", {});
  ASSERT_FALSE(result.ok);
  EXPECT_NE(result.error.message.find("emial"), std::string::npos) << result.error.message;
}

TEST_F(TranscoderTest, WrongTypeIsRejected) {
  auto result = request_to_proto(route("POST", "/v1/auth/signup"), R"({"email":42})", "", {});
  EXPECT_FALSE(result.ok);
}

TEST_F(TranscoderTest, PathVariablesOverrideBodyAndQuery) {
  const auto& get_user = route("GET", "/v1/users/abc");
  auto result = request_to_proto(get_user, "", "id=from-query", {{"id", "from-path"}});
  ASSERT_TRUE(result.ok);
  users::v1::GetUserRequest request;
  ASSERT_TRUE(request.ParseFromString(result.payload));
  EXPECT_EQ(request.id(), "from-path");
}

TEST_F(TranscoderTest, QueryParametersFillScalarFieldsAndIgnoreUnknown) {
  const auto& get_user = route("GET", "/v1/users/abc");
  auto result = request_to_proto(get_user, "", "id=a%20b&utm_source=x", {});
  ASSERT_TRUE(result.ok);
  users::v1::GetUserRequest request;
  ASSERT_TRUE(request.ParseFromString(result.payload));
  EXPECT_EQ(request.id(), "a b");
}

TEST_F(TranscoderTest, OptionalFieldPresenceSurvives) {
  const auto& update = route("PATCH", "/v1/users/me");
  auto absent = request_to_proto(update, "{}", "", {});
  auto present = request_to_proto(update, R"({"display_name":""})", "", {});
  users::v1::UpdateMeRequest a, b;
  ASSERT_TRUE(a.ParseFromString(absent.payload));
  ASSERT_TRUE(b.ParseFromString(present.payload));
  EXPECT_FALSE(a.has_display_name());
  EXPECT_TRUE(b.has_display_name());
}

TEST_F(TranscoderTest, ResponsePrintsEveryFieldWithOriginalNames) {
  users::v1::User user;
  user.set_id("u1");
  user.mutable_created_at()->set_seconds(1700000000);
  std::string json;
  ASSERT_TRUE(response_to_json(route("GET", "/v1/users/me"), user.SerializeAsString(), json));
  auto parsed = nlohmann::json::parse(json);
  EXPECT_EQ(parsed["id"], "u1");
  EXPECT_EQ(parsed["display_name"], "");    // default values are printed
  EXPECT_TRUE(parsed["roles"].is_array());  // and empty lists
  EXPECT_EQ(parsed["created_at"], "2023-11-14T22:13:20Z");
}

TEST_F(TranscoderTest, GarbageResponseBytesAreReported) {
  std::string json;
  EXPECT_FALSE(response_to_json(route("GET", "/v1/users/me"), "\xff\xff\xff", json));
}

TEST(ParseQuery, DecodesPlusAndPercent) {
  auto params = parse_query("a=1&b=x+y&c=%41&d&&e=");
  EXPECT_EQ(params["a"], "1");
  EXPECT_EQ(params["b"], "x y");
  EXPECT_EQ(params["c"], "A");
  EXPECT_EQ(params["d"], "");
  EXPECT_EQ(params.count("e"), 1u);
}

}  // namespace
}  // namespace trellis::gateway
