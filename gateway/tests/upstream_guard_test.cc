#include "trellis/gateway/upstream_guard.h"

#include <gtest/gtest.h>

#include "trellis/gateway/filters/upstream_filter.h"

namespace trellis::gateway {
namespace {

UpstreamPolicy policy() {
  UpstreamPolicy p;
  p.max_in_flight = 2;
  p.breaker_failures = 3;
  p.breaker_open_ms = 1000;
  p.retry_budget_ratio = 0.5;
  return p;
}

TEST(UpstreamGuard, OpensAfterConsecutiveFailuresAndFailsFast) {
  UpstreamGuard guard(policy());
  int64_t retry_after = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(guard.admit(0, retry_after), UpstreamGuard::Admission::kAdmitted);
    guard.finish(/*failed=*/true, 0);
  }
  EXPECT_EQ(guard.state(0), CircuitState::kOpen);
  EXPECT_EQ(guard.admit(10, retry_after), UpstreamGuard::Admission::kCircuitOpen);
  EXPECT_GE(retry_after, 990);
}

TEST(UpstreamGuard, ASuccessResetsTheFailureCount) {
  UpstreamGuard guard(policy());
  int64_t retry_after = 0;
  for (bool failed : {true, true, false, true, true}) {
    ASSERT_EQ(guard.admit(0, retry_after), UpstreamGuard::Admission::kAdmitted);
    guard.finish(failed, 0);
  }
  EXPECT_EQ(guard.state(0), CircuitState::kClosed);
}

TEST(UpstreamGuard, HalfOpenLetsOneProbeThroughThenClosesOrReopens) {
  UpstreamGuard guard(policy());
  int64_t retry_after = 0;
  for (int i = 0; i < 3; ++i) {
    guard.admit(0, retry_after);
    guard.finish(true, 0);
  }
  EXPECT_EQ(guard.state(1000), CircuitState::kHalfOpen);
  ASSERT_EQ(guard.admit(1000, retry_after), UpstreamGuard::Admission::kAdmitted);  // the probe
  EXPECT_EQ(guard.admit(1001, retry_after), UpstreamGuard::Admission::kCircuitOpen);
  guard.finish(true, 1002);  // probe failed: open again for a full period
  EXPECT_EQ(guard.state(1500), CircuitState::kOpen);
  EXPECT_EQ(guard.state(2002), CircuitState::kHalfOpen);
  ASSERT_EQ(guard.admit(2002, retry_after), UpstreamGuard::Admission::kAdmitted);
  guard.finish(false, 2003);
  EXPECT_EQ(guard.state(2003), CircuitState::kClosed);
  EXPECT_EQ(guard.admit(2004, retry_after), UpstreamGuard::Admission::kAdmitted);
}

TEST(UpstreamGuard, ShedsLoadBeyondMaxInFlight) {
  UpstreamGuard guard(policy());
  int64_t retry_after = 0;
  EXPECT_EQ(guard.admit(0, retry_after), UpstreamGuard::Admission::kAdmitted);
  EXPECT_EQ(guard.admit(0, retry_after), UpstreamGuard::Admission::kAdmitted);
  EXPECT_EQ(guard.admit(0, retry_after), UpstreamGuard::Admission::kOverloaded);
  guard.finish(false, 0);
  EXPECT_EQ(guard.admit(0, retry_after), UpstreamGuard::Admission::kAdmitted);
  EXPECT_EQ(guard.in_flight(), 2);
}

TEST(UpstreamGuard, RetriesStayWithinTheBudget) {
  auto p = policy();
  p.max_in_flight = 1000000;
  UpstreamGuard guard(p);
  // Drain the initial allowance.
  while (guard.take_retry()) {
  }
  int64_t retry_after = 0;
  for (int i = 0; i < 100; ++i) guard.admit(0, retry_after);
  int retries = 0;
  while (guard.take_retry()) ++retries;
  EXPECT_EQ(retries, 50);  // 100 requests × 0.5
}

TEST(RequestTimeout, Parsing) {
  EXPECT_EQ(parse_request_timeout_ms("250"), 250);
  EXPECT_EQ(parse_request_timeout_ms("250ms"), 250);
  EXPECT_EQ(parse_request_timeout_ms("2s"), 2000);
  EXPECT_EQ(parse_request_timeout_ms("0"), -1);
  EXPECT_EQ(parse_request_timeout_ms("-5"), -1);
  EXPECT_EQ(parse_request_timeout_ms("1h"), -1);
  EXPECT_EQ(parse_request_timeout_ms("9999999999"), -1);
  EXPECT_EQ(parse_request_timeout_ms(""), -1);
}

}  // namespace
}  // namespace trellis::gateway
