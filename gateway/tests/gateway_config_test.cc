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
    "redis": {"host": "127.0.0.2", "port": 7000, "command_timeout_ms": 50},
    "auth": {"issuer": "i", "audience": "a", "jwks_upstream": "users", "jwks_refresh_s": 5,
             "leeway_s": 10}})");
  auto config = load_gateway_config(path);
  EXPECT_EQ(config.listen_port, 9000);
  EXPECT_EQ(config.io_threads, 3);
  EXPECT_EQ(config.max_body_bytes, 2048u);
  EXPECT_EQ(config.upstreams.at("users"), "127.0.0.1:1");
  EXPECT_EQ(config.redis_port, 7000);
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
      R"({"upstreams": {}})",  // jwks_upstream "users" is not configured
  };
  for (const char* text : bad) {
    auto path = write_temp(text);
    EXPECT_THROW(load_gateway_config(path), config::ConfigError) << text;
    std::remove(path.c_str());
  }
}

}  // namespace
}  // namespace trellis::gateway
