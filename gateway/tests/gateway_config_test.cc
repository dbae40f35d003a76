#include "trellis/gateway/gateway_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "trellis/common/config.h"

namespace trellis::gateway {
namespace {

std::string write_temp(const std::string& text) {
  char path[] = "/tmp/gateway-config-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(GatewayConfig, ReadsEveryKey) {
  auto path = write_temp(R"({
    "listen": {"address": "0.0.0.0", "port": 9000}, "io_threads": 3, "log_level": "debug",
    "limits": {"max_body_bytes": 2048}, "default_timeout_ms": 700,
    "upstreams": {"users": {"target": "127.0.0.1:1"}},
    "redis": {"host": "127.0.0.2", "port": 7000, "command_timeout_ms": 50, "tracked_keys": 0,
              "tracking_heartbeat_ms": 200},
    "auth": {"issuer": "i", "audience": "a", "jwks_upstream": "users", "jwks_refresh_s": 5,
             "leeway_s": 10}})");
  auto config = load_gateway_config(path);
  EXPECT_EQ(config.listen_port, 9000);
  EXPECT_EQ(config.io_threads, 3);
  EXPECT_EQ(config.max_body_bytes, 2048u);
  EXPECT_EQ(config.upstreams.at("users"), "127.0.0.1:1");
  EXPECT_EQ(config.redis_port, 7000);
  EXPECT_EQ(config.redis_tracked_keys, 0);
  EXPECT_EQ(config.redis_tracking_heartbeat_ms, 200);
  EXPECT_EQ(config.leeway_s, 10);
  std::remove(path.c_str());
}

TEST(GatewayConfig, RejectsUnknownKeysAndBadValues) {
  const char* bad[] = {
      R"({"upstreams": {"users": {"target": "x"}}, "listn": {}})",
      R"({"upstreams": {"users": {"target": "x", "tls": true}}})",
      R"({"upstreams": {"users": {"target": "x"}}, "io_threads": 0})",
      R"({"upstreams": {"users": {"target": "x"}}, "listen": {"port": "80"}})",
      R"({"upstreams": {"users": {"target": "x"}}, "log_level": "loud"})",
      R"({"upstreams": {"users": {"target": "x"}}, "redis": {"tracked_keys": -1}})",
      R"({"upstreams": {"users": {"target": "x"}}, "redis": {"tracking_heartbeat_ms": 0}})",
      R"({"upstreams": {}})",  // jwks_upstream "users" is not configured
  };
  for (const char* text : bad) {
    auto path = write_temp(text);
    EXPECT_THROW(load_gateway_config(path), config::ConfigError) << text;
    std::remove(path.c_str());
  }
}

TEST(GatewayConfig, PushDefaultsAndKeys) {
  auto path = write_temp(R"({"upstreams": {"users": {"target": "x"}}})");
  auto defaults = load_gateway_config(path).push;
  EXPECT_TRUE(defaults.enabled);
  EXPECT_EQ(defaults.stream, "trellis:notifications:push");
  EXPECT_EQ(defaults.user_stream_prefix, "trellis:notifications:user:");
  EXPECT_EQ(defaults.heartbeat_ms, 15000);
  EXPECT_EQ(defaults.auth_timeout_ms, 5000);
  EXPECT_EQ(defaults.revocation_check_ms, 10000);
  EXPECT_EQ(defaults.max_replay, 1000);
  EXPECT_EQ(defaults.max_queued_messages, 256);
  EXPECT_EQ(defaults.max_queued_bytes, 1048576u);
  EXPECT_EQ(defaults.max_connections, 10000);
  EXPECT_EQ(defaults.max_streams_per_user, 16);
  std::remove(path.c_str());

  path = write_temp(R"({"upstreams": {"users": {"target": "x"}}, "push": {
    "enabled": false, "stream": "s", "user_stream_prefix": "p:", "heartbeat_ms": 1000,
    "auth_timeout_ms": 200, "revocation_check_ms": 300, "max_replay": 5,
    "max_queued_messages": 7, "max_queued_bytes": 4096, "max_connections": 9,
    "max_streams_per_user": 2}})");
  auto push = load_gateway_config(path).push;
  EXPECT_FALSE(push.enabled);
  EXPECT_EQ(push.stream, "s");
  EXPECT_EQ(push.user_stream_prefix, "p:");
  EXPECT_EQ(push.heartbeat_ms, 1000);
  EXPECT_EQ(push.auth_timeout_ms, 200);
  EXPECT_EQ(push.revocation_check_ms, 300);
  EXPECT_EQ(push.max_replay, 5);
  EXPECT_EQ(push.max_queued_messages, 7);
  EXPECT_EQ(push.max_queued_bytes, 4096u);
  EXPECT_EQ(push.max_connections, 9);
  EXPECT_EQ(push.max_streams_per_user, 2);
  std::remove(path.c_str());

  for (const char* bad : {R"({"heartbeat": 1})", R"({"max_connections": 0})", R"({"stream": ""})",
                          R"({"heartbeat_ms": "15000"})", R"({"max_streams_per_user": 0})"}) {
    path = write_temp(std::string(R"({"upstreams": {"users": {"target": "x"}}, "push": )") + bad +
                      "}");
    EXPECT_THROW(load_gateway_config(path), config::ConfigError) << bad;
    std::remove(path.c_str());
  }
}

}  // namespace
}  // namespace trellis::gateway
