#include "trellis/common/log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <thread>
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

// Plain text is copied 8 bytes at a time: a byte that needs escaping must be found wherever it
// falls in such a word, and text around it must survive.
TEST(Log, EscapesASpecialByteAtEveryPositionOfLongPlainText) {
  const std::string specials[] = {"\"",   "\\",      std::string(1, '\0'), "\x01", "\x1f", "\n",
                                  "\x7f", "\xC3\xA9"};
  // Every length up to 25: text that is not a whole number of 8-byte words ends with a word
  // that overlaps the one before it.
  for (const auto& special : specials) {
    for (size_t length = 1; length <= 25; ++length) {
      for (size_t position = 0; position < length; ++position) {
        std::string text(length, 'a');
        for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('A' + i);
        text.replace(position, 1, special);
        Field fields[] = {{"text", text}};
        auto line = render(Level::kInfo, "c", "m", fields);
        ASSERT_EQ(nlohmann::json::parse(line)["text"], text) << line;
      }
    }
  }
}

TEST(Log, TimestampIsRfc3339WithMicrosecondsInUtc) {
  auto before = std::chrono::system_clock::now();
  auto first = nlohmann::json::parse(render(Level::kInfo, "c", "m", {}))["ts"].get<std::string>();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the next second's prefix
  auto second = nlohmann::json::parse(render(Level::kInfo, "c", "m", {}))["ts"].get<std::string>();
  auto after = std::chrono::system_clock::now();
  for (const auto& ts : {first, second}) {
    ASSERT_TRUE(std::regex_match(ts, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
        << ts;
  }
  auto as_time = [](const std::string& ts) {
    std::tm tm{};
    strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    return std::chrono::system_clock::from_time_t(timegm(&tm)) +
           std::chrono::microseconds(std::stoll(ts.substr(20, 6)));
  };
  auto slack = std::chrono::microseconds(1);
  EXPECT_LE(before - slack, as_time(first));
  EXPECT_LT(as_time(first), as_time(second));
  EXPECT_GE(as_time(second) - as_time(first), std::chrono::milliseconds(1100));
  EXPECT_LE(as_time(second), after + slack);
}

TEST(Log, FixedTextIsShortestAndReadsBack) {
  EXPECT_EQ(fixed_text(0.125), "0.125");
  EXPECT_EQ(fixed_text(3.0), "3");
  EXPECT_EQ(fixed_text(0.00001), "0.00001");  // never an exponent: JSON numbers in the log
  EXPECT_EQ(fixed_text(-2.5), "-2.5");
  EXPECT_EQ(std::stod(fixed_text(1.0 / 3.0)), 1.0 / 3.0);
}

TEST(Log, FixedPointFieldsAreJsonNumbers) {
  Field fields[] = {Field::fixed_point("a", 20062, 3),
                    Field::fixed_point("b", 62, 3),
                    Field::fixed_point("c", 20000, 3),
                    Field::fixed_point("d", -5, 3),
                    Field::fixed_point("e", 7, 0),
                    Field::fixed_point("f", 0, 3),
                    Field::fixed_point("g", std::numeric_limits<long long>::min(), 0)};
  auto line = nlohmann::json::parse(render(Level::kInfo, "c", "m", fields));
  EXPECT_EQ(line["a"].get<double>(), 20.062);
  EXPECT_EQ(line["b"].get<double>(), 0.062);
  EXPECT_EQ(line["c"].get<double>(), 20.0);
  EXPECT_EQ(line["d"].get<double>(), -0.005);
  EXPECT_EQ(line["e"].get<long long>(), 7);
  EXPECT_EQ(line["f"].get<double>(), 0.0);
  EXPECT_EQ(line["g"].get<long long>(), std::numeric_limits<long long>::min());
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
