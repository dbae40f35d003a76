#include "trellis/common/trace.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace trellis::trace {
namespace {

constexpr const char* kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(Traceparent, ParsesAValidHeader) {
  auto parsed = parse_traceparent(kValid);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed->parent_id, "00f067aa0ba902b7");
  EXPECT_TRUE(parsed->sampled);
}

TEST(Traceparent, RejectsMalformedHeaders) {
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"}) {
    EXPECT_FALSE(parse_traceparent(bad).has_value()) << bad;
  }
}

TEST(Traceparent, ContinuesTheCallersTraceWithANewSpan) {
  auto context = continue_or_start(kValid);
  EXPECT_EQ(context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(context.parent_id, "00f067aa0ba902b7");
  EXPECT_NE(context.span_id, "00f067aa0ba902b7");
  EXPECT_EQ(context.traceparent().substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
}

TEST(Traceparent, StartsANewTraceWhenAbsentOrBad) {
  auto a = continue_or_start("");
  auto b = continue_or_start("garbage");
  EXPECT_EQ(a.trace_id.size(), 32u);
  EXPECT_NE(a.trace_id, b.trace_id);
  EXPECT_TRUE(parse_traceparent(a.traceparent()).has_value());
}

TEST(RequestId, AcceptsOnlyWellFormedIds) {
  EXPECT_TRUE(is_well_formed_request_id("abc-123_X.y:z"));
  EXPECT_FALSE(is_well_formed_request_id(""));
  EXPECT_FALSE(is_well_formed_request_id(std::string(129, 'a')));
  EXPECT_FALSE(is_well_formed_request_id("has space"));
  EXPECT_FALSE(is_well_formed_request_id("new\nline"));
  EXPECT_EQ(new_request_id().size(), 32u);
  EXPECT_NE(new_request_id(), new_request_id());
}

TEST(RandomIdHex, GivesLowercaseHexOfTheRequestedLengthAndNoRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i) {
    auto id = random_id_hex(i % 2 ? 16 : 8);
    ASSERT_EQ(id.size(), i % 2 ? 32u : 16u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ASSERT_NE(id.find_first_not_of('0'), std::string::npos) << "all-zero ids are invalid";
    ASSERT_TRUE(seen.insert(id).second) << "repeated id " << id;
  }
  EXPECT_EQ(random_id_hex(5).size(), 10u);  // not a multiple of 8
  EXPECT_EQ(random_id_hex(0), "");          // returns (an empty id cannot be "not all zero")
  EXPECT_EQ(random_id_hex(100).size(), 200u);
}

TEST(RandomIdHex, EachThreadHasItsOwnSequence) {
  // Threads seeded alike would hand out the same ids: every first id must differ.
  std::vector<std::string> first(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < first.size(); ++i) {
    threads.emplace_back([&first, i] { first[i] = random_id_hex(16); });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()).size(), first.size());
}

TEST(ContinueOrStart, StartsValidTracesWithFreshIds) {
  auto a = continue_or_start(""), b = continue_or_start("");
  EXPECT_NE(a.trace_id, b.trace_id);
  EXPECT_NE(a.span_id, b.span_id);
  EXPECT_TRUE(parse_traceparent(a.traceparent()).has_value()) << a.traceparent();
  auto continued = continue_or_start(kValid);
  EXPECT_EQ(continued.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(continued.span_id, "00f067aa0ba902b7");
}

}  // namespace
}  // namespace trellis::trace
