#include "trellis/notifications/config.h"

#include <gtest/gtest.h>

#include "trellis/common/config.h"
#include "trellis/testing/support.h"

namespace trellis::notifications {
namespace {

using TempConfig = testing::TempFile;

TEST(NotificationsConfig, DefaultsAreTheDocumentedValues) {
  TempConfig file("{}");
  auto config = load_config(file.path());
  EXPECT_EQ(config.grpc_listen, "127.0.0.1:50053");
  EXPECT_EQ(config.database.dbname, "trellis_notifications");
  EXPECT_EQ(config.database.user, "trellis_notifications");
  EXPECT_EQ(config.consumer.stream, "trellis:events:orders");
  EXPECT_EQ(config.consumer.group, "notifications");
  EXPECT_FALSE(config.consumer.consumer.empty());  // <hostname>-<pid>
  EXPECT_EQ(config.consumer.start_id, "0");
  EXPECT_EQ(config.consumer.claim_idle_ms, 30000);
  EXPECT_EQ(config.consumer.max_deliveries, 5);
  EXPECT_EQ(config.consumer.dead_letter_stream, "trellis:events:orders:dead-letter");
  EXPECT_EQ(config.push.stream, "trellis:notifications:push");
  EXPECT_EQ(config.push.user_stream_prefix, "trellis:notifications:user:");
  EXPECT_EQ(config.push.user_stream_maxlen, 1000);
}

TEST(NotificationsConfig, ReadsEveryBlock) {
  TempConfig file(R"({
    "grpc": {"listen": "0.0.0.0:6001"}, "database": {"dbname": "n", "pool_size": 2},
    "redis": {"port": 7001}, "migrate_on_start": false,
    "consumer": {"consumer": "c-1", "start_id": "$", "batch": 7, "claim_idle_ms": 100,
                 "max_deliveries": 2, "dead_letter_stream": "dl"},
    "push": {"stream": "p", "user_stream_ttl_s": 60}})");
  auto config = load_config(file.path());
  EXPECT_EQ(config.grpc_listen, "0.0.0.0:6001");
  EXPECT_EQ(config.database.dbname, "n");
  EXPECT_EQ(config.redis.port, 7001);
  EXPECT_FALSE(config.migrate_on_start);
  EXPECT_EQ(config.consumer.consumer, "c-1");
  EXPECT_EQ(config.consumer.start_id, "$");
  EXPECT_EQ(config.consumer.batch, 7);
  EXPECT_EQ(config.consumer.claim_idle_ms, 100);
  EXPECT_EQ(config.consumer.max_deliveries, 2);
  EXPECT_EQ(config.consumer.dead_letter_stream, "dl");
  EXPECT_EQ(config.push.stream, "p");
  EXPECT_EQ(config.push.user_stream_ttl_s, 60);
}

TEST(NotificationsConfig, RejectsUnknownKeysAndBadValues) {
  for (const char* text :
       {R"({"consumer": {"bogus": 1}})", R"({"push": {"strem": "x"}})", R"({"colour": 1})",
        R"({"consumer": {"start_id": "5-0"}})", R"({"consumer": {"max_deliveries": 0}})",
        R"({"consumer": {"stream": ""}})", R"({"push": {"user_stream_maxlen": 1}})"}) {
    TempConfig file(text);
    EXPECT_THROW(load_config(file.path()), config::ConfigError) << text;
  }
}

}  // namespace
}  // namespace trellis::notifications
