#include "trellis/common/config.h"

#include <gtest/gtest.h>

namespace trellis::config {
namespace {

TEST(ObjectReader, ReadsValuesAndDefaults) {
  ObjectReader reader(nlohmann::json{{"name", "x"}, {"count", 3}, {"on", true}}, "test");
  EXPECT_EQ(reader.get_string("name", "d"), "x");
  EXPECT_EQ(reader.get_string("missing", "d"), "d");
  EXPECT_EQ(reader.get_int("count", 1, 0, 10), 3);
  EXPECT_TRUE(reader.get_bool("on", false));
  EXPECT_NO_THROW(reader.reject_unknown_keys());
}

TEST(ObjectReader, RejectsUnknownKeysByName) {
  ObjectReader reader(nlohmann::json{{"name", "x"}, {"nmae", "y"}}, "svc");
  reader.get_string("name", "");
  try {
    reader.reject_unknown_keys();
    FAIL() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nmae"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("svc"), std::string::npos) << e.what();
  }
}

TEST(ObjectReader, RejectsWrongTypesAndOutOfRange) {
  ObjectReader reader(nlohmann::json{{"port", "80"}, {"threads", 0}, {"flag", 1}}, "t");
  EXPECT_THROW(reader.get_int("port", 1, 1, 65535), ConfigError);
  EXPECT_THROW(reader.get_int("threads", 1, 1, 8), ConfigError);
  EXPECT_THROW(reader.get_bool("flag", false), ConfigError);
}

TEST(ObjectReader, RequiredStringMustBePresent) {
  ObjectReader reader(nlohmann::json::object(), "t");
  EXPECT_THROW(reader.require_string("keys_dir"), ConfigError);
}

TEST(ObjectReader, NestedObjectsAreCheckedToo) {
  ObjectReader reader(nlohmann::json{{"db", {{"host", "h"}, {"hots", "x"}}}}, "t");
  auto db = reader.get_object("db");
  db.get_string("host", "");
  EXPECT_THROW(db.reject_unknown_keys(), ConfigError);
  EXPECT_EQ(db.where(), "t.db");
}

TEST(LoadFile, ReportsMissingFileAndSyntaxErrors) {
  EXPECT_THROW(load_file("/nonexistent/trellis.json"), ConfigError);
}

}  // namespace
}  // namespace trellis::config

namespace trellis::config {
namespace {

TEST(EnvOverrides, SetNestedKeysWithJsonOrStringValues) {
  nlohmann::json config = {{"database", {{"host", "db"}, {"port", 5432}}}};
  std::string a = "TRELLIS_USERS__DATABASE__PORT=6543";
  std::string b = "TRELLIS_USERS__DATABASE__PASSWORD=s3cr3t value";
  std::string c = "TRELLIS_USERS__METRICS__LISTEN=127.0.0.1:9101";
  std::string d = "TRELLIS_GATEWAY__LISTEN__PORT=1";  // another component's: ignored
  std::string e = "PATH=/bin";
  char* environment[] = {a.data(), b.data(), c.data(), d.data(), e.data(), nullptr};
  apply_env_overrides(config, "TRELLIS_USERS", environment);
  EXPECT_EQ(config["database"]["port"], 6543);
  EXPECT_EQ(config["database"]["host"], "db");
  EXPECT_EQ(config["database"]["password"], "s3cr3t value");
  EXPECT_EQ(config["metrics"]["listen"], "127.0.0.1:9101");
  EXPECT_FALSE(config.contains("listen"));
}

TEST(EnvOverrides, MisspeltKeysAreStillRefusedByTheReader) {
  nlohmann::json config = nlohmann::json::object();
  std::string a = "TRELLIS_USERS__DATABSE__HOST=x";
  char* environment[] = {a.data(), nullptr};
  apply_env_overrides(config, "TRELLIS_USERS", environment);
  ObjectReader reader(config, "users");
  reader.get_object("database");
  EXPECT_THROW(reader.reject_unknown_keys(), ConfigError);
}

TEST(EnvOverrides, EmptyKeySegmentIsRefused) {
  nlohmann::json config = nlohmann::json::object();
  std::string a = "TRELLIS_USERS__DATABASE____HOST=x";
  char* environment[] = {a.data(), nullptr};
  EXPECT_THROW(apply_env_overrides(config, "TRELLIS_USERS", environment), ConfigError);
}

TEST(Redact, HidesSecretValuesAtAnyDepth) {
  nlohmann::json config = {{"database", {{"password", "pw"}, {"host", "h"}}},
                           {"client_secret", "cs"},
                           {"tokens", {{"keys_dir", "/k"}, {"refresh_token", "rt"}}},
                           {"redis", {{"password", ""}}}};
  auto safe = redact(config);
  EXPECT_EQ(safe["database"]["password"], "<redacted>");
  EXPECT_EQ(safe["database"]["host"], "h");
  EXPECT_EQ(safe["client_secret"], "<redacted>");
  EXPECT_EQ(safe["tokens"]["keys_dir"], "/k");  // "tokens" is an object: only its secrets go
  EXPECT_EQ(safe["tokens"]["refresh_token"], "<redacted>");
  EXPECT_EQ(safe["redis"]["password"], "");  // empty says "not set", which is useful and safe
  EXPECT_EQ(safe.dump().find("pw"), std::string::npos);
}

}  // namespace
}  // namespace trellis::config

namespace trellis::config {
namespace {

TEST(EnvOverrides, AllDigitSecretsStayTextForStringKeys) {
  nlohmann::json config = nlohmann::json::object();
  std::string a = "TRELLIS_USERS__DATABASE__PASSWORD=0123456789";
  std::string b = "TRELLIS_USERS__DATABASE__USER=424242";
  std::string c = "TRELLIS_USERS__TOKENS__ACTIVE_KID=1e5";
  char* environment[] = {a.data(), b.data(), c.data(), nullptr};
  apply_env_overrides(config, "TRELLIS_USERS", environment);
  ObjectReader reader(config, "users");
  auto database = reader.get_object("database");
  EXPECT_EQ(database.get_string("password", ""), "0123456789");
  EXPECT_EQ(database.get_string("user", ""), "424242");
  EXPECT_EQ(reader.get_object("tokens").require_string("active_kid"), "1e5");
}

}  // namespace
}  // namespace trellis::config
