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
