#include "trellis/gateway/openapi.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {
namespace {

class OpenApiTest : public ::testing::Test {
 protected:
  RouteTable table = RouteTable::from_linked_protos();
  nlohmann::json doc = nlohmann::json::parse(render_openapi(table, "1.2.3"));
};

TEST_F(OpenApiTest, IsOpenApi31WithEveryRoute) {
  EXPECT_EQ(doc["openapi"], "3.1.0");
  EXPECT_EQ(doc["info"]["version"], "1.2.3");
  size_t operations = 0;
  for (auto& [path, item] : doc["paths"].items()) operations += item.size();
  EXPECT_EQ(operations, table.routes().size());
}

TEST_F(OpenApiTest, StatusAuthAndSchemasComeFromTheProtoOptions) {
  auto signup = doc["paths"]["/v1/auth/signup"]["post"];
  EXPECT_TRUE(signup["responses"].contains("201"));
  EXPECT_EQ(signup["security"], nlohmann::json::array());  // public
  EXPECT_EQ(signup["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/trellis.users.v1.SignupRequest");
  auto logout = doc["paths"]["/v1/auth/logout"]["post"];
  EXPECT_TRUE(logout["responses"].contains("204"));
  EXPECT_FALSE(logout.contains("security"));  // inherits the global bearer requirement
  auto user = doc["components"]["schemas"]["trellis.users.v1.User"]["properties"];
  EXPECT_EQ(user["display_name"]["type"], "string");
  EXPECT_EQ(user["created_at"]["format"], "date-time");
  EXPECT_EQ(user["roles"]["type"], "array");
}

TEST_F(OpenApiTest, PathVariablesAreParameters) {
  auto get_user = doc["paths"]["/v1/users/{id}"]["get"];
  ASSERT_EQ(get_user["parameters"].size(), 1u);
  EXPECT_EQ(get_user["parameters"][0]["in"], "path");
  EXPECT_EQ(get_user["parameters"][0]["name"], "id");
}

}  // namespace
}  // namespace trellis::gateway
