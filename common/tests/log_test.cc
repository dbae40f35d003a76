#include "trellis/common/log.h"

#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace trellis::log {
namespace {

TEST(Log, RendersOneJsonObjectWithFields) {
  Field fields[] = {{"request_id", "r1"}, {"status", 200}};
  auto line = render(Level::kWarn, "gateway", "access", fields);
  auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["level"], "warn");
  EXPECT_EQ(parsed["component"], "gateway");
  EXPECT_EQ(parsed["msg"], "access");
  EXPECT_EQ(parsed["request_id"], "r1");
  EXPECT_EQ(parsed["status"], 200);
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(Log, EscapesHostileText) {
  Field fields[] = {{"path", "/x\"\n\xff"}};
  auto line = render(Level::kInfo, "gateway", "m", fields);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NO_THROW(nlohmann::json::parse(line));
}

TEST(Log, KeepsValidUtf8AndReplacesEachInvalidByte) {
  Field fields[] = {{"ok", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
                    {"bad",
                     "a\xFF"
                     "b\xC0\xAF"
                     "c\xED\xA0\x80"
                     "d\xE2\x82"},
                    {"ctl", std::string("\x01\x1f\\\"\t", 5)}};
  auto parsed = nlohmann::json::parse(render(Level::kInfo, "c", "m", fields));
  EXPECT_EQ(parsed["ok"], "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(parsed["bad"], "a" + r + "b" + r + r + "c" + r + r + r + "d" + r + r);
  EXPECT_EQ(parsed["ctl"], std::string("\x01\x1f\\\"\t", 5));
}

TEST(Log, AnyBytesGiveOneParsableLine) {
  std::mt19937 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::string text(random() % 40, '\0');
    for (auto& c : text) c = static_cast<char>(random() % 256);
    Field fields[] = {{"text", text}};
    auto line = render(Level::kInfo, "c", text, fields);
    ASSERT_EQ(line.find('\n'), std::string::npos);
    ASSERT_NO_THROW(nlohmann::json::parse(line)) << line;
  }
}

TEST(Log, NumbersAreJsonNumbers) {
  Field fields[] = {{"int", 42},   {"negative", -7},
                    {"ms", 1.5},   {"whole", 2.0},
                    {"big", 1e20}, {"nan", std::numeric_limits<double>::quiet_NaN()}};
  auto line = render(Level::kInfo, "c", "m", fields);
  auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["int"], 42);
  EXPECT_EQ(parsed["negative"], -7);
  EXPECT_EQ(parsed["ms"], 1.5);
  EXPECT_NE(line.find("\"ms\":1.5,"), std::string::npos) << line;
  EXPECT_EQ(parsed["whole"], 2.0);
  EXPECT_EQ(parsed["big"], 1e20);
  EXPECT_TRUE(parsed["nan"].is_null());
}

TEST(Log, ARepeatedKeyKeepsItsPlaceAndTheLastValue) {
  Field scope[] = {{"request_id", "r1"}, {"user", "a"}};
  Field more[] = {{"user", "b"}, {"msg", "override"}};
  auto line = render(Level::kInfo, "c", "m", scope, more);
  EXPECT_EQ(line.find("\"user\""), line.rfind("\"user\"")) << "one key: " << line;
  auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["user"], "b");
  EXPECT_EQ(parsed["msg"], "override");
  EXPECT_LT(line.find("\"ts\""), line.find("\"request_id\""));
}

TEST(Log, KeepsEveryFieldHoweverMany) {
  std::vector<std::string> keys;  // Field keys are views
  for (int i = 0; i < 50; ++i) keys.push_back("k" + std::to_string(i));
  std::vector<Field> fields;
  for (int i = 0; i < 50; ++i) fields.emplace_back(keys[i], std::to_string(i));
  auto parsed = nlohmann::json::parse(render(Level::kInfo, "c", "m", fields, {}));
  EXPECT_EQ(parsed.size(), 54u);  // ts, level, component, msg and the 50
  EXPECT_EQ(parsed["k49"], "49");
}

TEST(Log, ParsesLevels) {
  Level level;
  EXPECT_TRUE(parse_level("debug", level));
  EXPECT_EQ(level, Level::kDebug);
  EXPECT_FALSE(parse_level("verbose", level));
}

}  // namespace
}  // namespace trellis::log
