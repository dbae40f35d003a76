#include "trellis/gateway/route_table.h"

#include <gtest/gtest.h>

namespace trellis::gateway {
namespace {

TEST(PathTemplate, ParsesLiteralsVariablesAndVerbs) {
  auto path = PathTemplate::parse("/v1/orders/{id}:cancel");
  ASSERT_EQ(path.segments.size(), 3u);
  EXPECT_EQ(path.segments[0].literal, "v1");
  EXPECT_EQ(path.segments[2].variable, "id");
  EXPECT_EQ(path.segments[2].verb, ":cancel");
  EXPECT_EQ(path.literal_count, 2);
}

TEST(PathTemplate, RejectsMalformedTemplates) {
  EXPECT_THROW(PathTemplate::parse("v1/users"), std::invalid_argument);
  EXPECT_THROW(PathTemplate::parse("/v1/{id"), std::invalid_argument);
  EXPECT_THROW(PathTemplate::parse("/v1/{a-b}"), std::invalid_argument);
  EXPECT_THROW(PathTemplate::parse("/v1/{id}x"), std::invalid_argument);
  EXPECT_THROW(PathTemplate::parse("/v1//users"), std::invalid_argument);
}

TEST(PathTemplate, MatchesAndDecodesVariables) {
  auto path = PathTemplate::parse("/v1/orders/{id}:cancel");
  std::map<std::string, std::string> bound;
  ASSERT_TRUE(path.match("/v1/orders/a%20b:cancel", bound));
  EXPECT_EQ(bound["id"], "a b");
  EXPECT_FALSE(path.match("/v1/orders/abc", bound));
  EXPECT_FALSE(path.match("/v1/orders/:cancel", bound));
  EXPECT_FALSE(path.match("/v1/orders/abc:cancel/extra", bound));
  EXPECT_FALSE(path.match("/v1/orders/%zz:cancel", bound));
  EXPECT_FALSE(path.match("/v1/orders/%2:cancel", bound));
}

TEST(PathTemplate, TrailingSlashIsADifferentPath) {
  auto path = PathTemplate::parse("/v1/users/me");
  std::map<std::string, std::string> bound;
  EXPECT_TRUE(path.match("/v1/users/me", bound));
  EXPECT_FALSE(path.match("/v1/users/me/", bound));
  EXPECT_FALSE(path.match("/V1/users/me", bound));
}

class LinkedRoutes : public ::testing::Test {
 protected:
  RouteTable table = RouteTable::from_linked_protos();
};

TEST_F(LinkedRoutes, HasEveryUsersRouteFromTheProtoOptions) {
  auto signup = table.match("POST", "/v1/auth/signup");
  ASSERT_NE(signup.route, nullptr);
  EXPECT_EQ(signup.route->grpc_method, "/trellis.users.v1.AuthService/Signup");
  EXPECT_EQ(signup.route->success_status, 201);
  EXPECT_EQ(signup.route->auth, AuthMode::kPublic);
  EXPECT_EQ(signup.route->upstream, "users");

  auto logout = table.match("POST", "/v1/auth/logout");
  ASSERT_NE(logout.route, nullptr);
  EXPECT_EQ(logout.route->success_status, 204);
  EXPECT_EQ(logout.route->auth, AuthMode::kRequired);
}

TEST_F(LinkedRoutes, LiteralSegmentWinsOverVariable) {
  auto me = table.match("GET", "/v1/users/me");
  ASSERT_NE(me.route, nullptr);
  EXPECT_EQ(me.route->rpc_name, "trellis.users.v1.UserService.GetMe");
  auto other = table.match("GET", "/v1/users/0b6f7a52-2c57-4a43-9d0f-3f1a2a1e3c11");
  ASSERT_NE(other.route, nullptr);
  EXPECT_EQ(other.route->rpc_name, "trellis.users.v1.UserService.GetUser");
  EXPECT_EQ(other.params.at("id"), "0b6f7a52-2c57-4a43-9d0f-3f1a2a1e3c11");
}

TEST_F(LinkedRoutes, WrongMethodListsAllowedMethods) {
  auto match = table.match("DELETE", "/v1/users/me");
  EXPECT_EQ(match.route, nullptr);
  EXPECT_EQ(match.allowed_methods, (std::vector<std::string>{"GET", "PATCH"}));
}

TEST_F(LinkedRoutes, UnknownPathHasNoAllowedMethods) {
  auto match = table.match("GET", "/v1/nothing");
  EXPECT_EQ(match.route, nullptr);
  EXPECT_TRUE(match.allowed_methods.empty());
}

TEST_F(LinkedRoutes, UpstreamsAreCollected) {
  EXPECT_EQ(table.upstreams(), (std::vector<std::string>{"notifications", "orders", "users"}));
}

}  // namespace
}  // namespace trellis::gateway
