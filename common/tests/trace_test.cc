#include "trellis/common/trace.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace trellis::trace
