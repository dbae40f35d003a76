#include "trellis/orders/config.h"

#include <gtest/gtest.h>

#include "trellis/common/config.h"
#include "trellis/testing/support.h"

namespace trellis::orders {
namespace {

using TempConfig = testing::TempFile;

TEST(OrdersConfig, DefaultsAreTheDocumentedValues) {
  TempConfig file("{}");
  auto config = load_config(file.path());
  EXPECT_EQ(config.grpc_listen, "127.0.0.1:50052");
  EXPECT_EQ(config.grpc_idle_threads, 32);
  EXPECT_EQ(config.database.dbname, "trellis_orders");
  EXPECT_EQ(config.database.user, "trellis_orders");
  EXPECT_TRUE(config.migrate_on_start);
  EXPECT_EQ(config.redis.port, 6379);
  EXPECT_EQ(config.orders.auto_confirm_delay_ms, 2000);
  EXPECT_EQ(config.orders.idempotency_ttl_s, 86400);
  EXPECT_EQ(config.orders.relay_stream, "trellis:events:orders");
  EXPECT_EQ(config.orders.relay_stream_maxlen, 1000000);
  EXPECT_EQ(config.orders.relay_batch, 100);
  EXPECT_EQ(config.orders.relay_interval_ms, 200);
  EXPECT_EQ(config.orders.relay_coalesce_ms, 5);
}

TEST(OrdersConfig, ReadsEveryBlock) {
  TempConfig file(R"({
    "grpc": {"listen": "0.0.0.0:6000", "idle_threads": 4}, "log_level": "debug",
    "database": {"host": "db", "port": 6543, "dbname": "o", "user": "u", "password": "p",
                 "pool_size": 3},
    "migrate_on_start": false, "redis": {"host": "r", "port": 7000, "timeout_ms": 50},
    "orders": {"auto_confirm_delay_ms": 0, "idempotency_ttl_s": 60, "relay_batch": 5,
               "relay_stream": "s:1", "relay_interval_ms": 10}})");
  auto config = load_config(file.path());
  EXPECT_EQ(config.grpc_listen, "0.0.0.0:6000");
  EXPECT_EQ(config.grpc_idle_threads, 4);
  EXPECT_EQ(config.database.port, 6543);
  EXPECT_EQ(config.database.pool_size, 3);
  EXPECT_FALSE(config.migrate_on_start);
  EXPECT_EQ(config.redis.timeout_ms, 50);
  EXPECT_EQ(config.orders.auto_confirm_delay_ms, 0);
  EXPECT_EQ(config.orders.relay_batch, 5);
  EXPECT_EQ(config.orders.relay_stream, "s:1");
  EXPECT_EQ(config.effective_json.find("\"p\""), std::string::npos);  // password redacted
}

TEST(OrdersConfig, RejectsUnknownKeysAndBadValues) {
  for (const char* text : {
           R"({"databse": {}})",
           R"({"orders": {"relay_batchsize": 5}})",
           R"({"redis": {"password": "x"}})",
           R"({"orders": {"relay_batch": 0}})",
           R"({"orders": {"auto_confirm_delay_ms": -1}})",
           R"({"orders": {"idempotency_ttl_s": 10}})",
           R"({"orders": {"relay_stream": ""}})",
           R"({"orders": {"relay_interval_ms": "fast"}})",
           R"({"orders": {"relay_coalesce_ms": 1001}})",
           R"({"log_level": "loud"})",
           R"({"grpc": {"idle_threads": 0}})",
       }) {
    TempConfig file(text);
    EXPECT_THROW(load_config(file.path()), config::ConfigError) << text;
  }
}

TEST(OrdersConfig, EnvironmentOverridesKeys) {
  TempConfig file(R"({"orders": {"relay_batch": 5}})");
  setenv("TRELLIS_ORDERS__ORDERS__RELAY_BATCH", "7", 1);
  auto config = load_config(file.path());
  unsetenv("TRELLIS_ORDERS__ORDERS__RELAY_BATCH");
  EXPECT_EQ(config.orders.relay_batch, 7);
}

}  // namespace
}  // namespace trellis::orders
