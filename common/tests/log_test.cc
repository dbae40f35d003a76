#include "trellis/common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

TEST(Log, ParsesLevels) {
  Level level;
  EXPECT_TRUE(parse_level("debug", level));
  EXPECT_EQ(level, Level::kDebug);
  EXPECT_FALSE(parse_level("verbose", level));
}

}  // namespace
}  // namespace trellis::log
