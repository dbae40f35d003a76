#include "trellis/users/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "trellis/common/config.h"

namespace trellis::users {
namespace {

std::string write_temp(const std::string& text) {
  char path[] = "/tmp/users-config-XXXXXX";
  close(mkstemp(path));
  std::ofstream(path) << text;
  return path;
}

TEST(UsersConfig, DefaultsAreDocumentedValues) {
  auto path = write_temp(R"({"tokens": {"keys_dir": "/k", "active_kid": "k1"}})");
  auto config = load_config(path);
  EXPECT_EQ(config.tokens.access_ttl_s, 900);
  EXPECT_EQ(config.passwords.ops_limit, 2);
  EXPECT_EQ(config.passwords.mem_limit_kib, 19456);
  EXPECT_EQ(config.database.dbname, "trellis_users");
  EXPECT_TRUE(config.migrate_on_start);
  std::remove(path.c_str());
}

TEST(UsersConfig, RejectsUnknownKeysAndMissingKeys) {
  const char* bad[] = {
      R"({"tokens": {"keys_dir": "/k", "active_kid": "k1"}, "databse": {}})",
      R"({"tokens": {"keys_dir": "/k", "active_kid": "k1", "ttl": 5}})",
      R"({"tokens": {"keys_dir": "/k"}})",
      R"({"tokens": {"keys_dir": "/k", "active_kid": "k1"}, "database": {"pool_size": 0}})",
      R"({"tokens": {"keys_dir": "/k", "active_kid": "k1"}, "passwords": {"ops_limit": 0}})",
  };
  for (const char* text : bad) {
    auto path = write_temp(text);
    EXPECT_THROW(load_config(path), config::ConfigError) << text;
    std::remove(path.c_str());
  }
}

}  // namespace
}  // namespace trellis::users
