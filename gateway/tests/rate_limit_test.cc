#include "trellis/gateway/rate_limit.h"

#include <gtest/gtest.h>

#include <deque>

namespace trellis::gateway {
namespace {

RateLimitPolicy policy(int64_t limit, int64_t window_s, int64_t burst) {
  RateLimitPolicy p;
  p.name = "p";
  p.limit = limit;
  p.window_s = window_s;
  p.burst = burst;
  return p;
}

TEST(Gcra, BurstArrivesAtOnceThenTheRateApplies) {
  auto p = policy(10, 10, 4);
  int64_t tat = 0, now = 1'000'000'000;
  for (int i = 0; i < 4; ++i) {
    auto d = gcra(tat, now, p.emission_interval_us(), p.tolerance_us());
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 3 - i);
  }
  auto refused = gcra(tat, now, p.emission_interval_us(), p.tolerance_us());
  EXPECT_FALSE(refused.allowed);
  // Sustained rate: (limit - burst + 1) = 7 per 10 s, one every ~1.43 s.
  EXPECT_NEAR(refused.retry_after_ms, 1429, 1);
  auto later = gcra(tat, now + 1'429'000, p.emission_interval_us(), p.tolerance_us());
  EXPECT_TRUE(later.allowed);
}

// The promise of a policy: never more than `limit` admitted in any window, however hard driven.
TEST(Gcra, NeverMoreThanLimitInAnySlidingWindow) {
  for (auto [limit, burst] : {std::pair{10, 1}, {10, 5}, {10, 10}, {100, 30}}) {
    auto p = policy(limit, 2, burst);
    int64_t tat = 0;
    std::deque<int64_t> admitted;
    int64_t total = 0;
    for (int64_t now = 0; now < 20'000'000; now += 997) {  // a request every ~1 ms for 20 s
      if (!gcra(tat, now, p.emission_interval_us(), p.tolerance_us()).allowed) continue;
      admitted.push_back(now);
      ++total;
      while (admitted.front() <= now - 2'000'000) admitted.pop_front();
      ASSERT_LE(static_cast<int64_t>(admitted.size()), limit)
          << "limit " << limit << " burst " << burst;
    }
    // ...and it is not stingy either: close to the sustained rate over time.
    EXPECT_GE(total, (limit - burst + 1) * 10 - 1) << "limit " << limit << " burst " << burst;
  }
}

TEST(RateLimitPolicy, RouteSelection) {
  RateLimitPolicy p;
  p.routes = {"/v1/auth/*", "/v1/users/{id}"};
  EXPECT_TRUE(p.applies_to("/v1/auth/login"));
  EXPECT_TRUE(p.applies_to("/v1/users/{id}"));
  EXPECT_FALSE(p.applies_to("/v1/users/me"));
  p.routes = {"*"};
  EXPECT_TRUE(p.applies_to("-"));
}

TEST(LocalRateLimiter, KeysAreIndependentAndBounded) {
  LocalRateLimiter limiter(2);
  auto p = policy(1, 60, 1);
  EXPECT_TRUE(limiter.decide("a", 0, p.emission_interval_us(), p.tolerance_us()).allowed);
  EXPECT_FALSE(limiter.decide("a", 1, p.emission_interval_us(), p.tolerance_us()).allowed);
  EXPECT_TRUE(limiter.decide("b", 1, p.emission_interval_us(), p.tolerance_us()).allowed);
  EXPECT_TRUE(limiter.decide("c", 2, p.emission_interval_us(), p.tolerance_us()).allowed);
}

TEST(ClientAddress, ForwardedForIsBelievedOnlyFromTrustedProxies) {
  ClientAddressResolver resolver({"10.0.0.0/8", "::1/128"});
  EXPECT_EQ(resolver.resolve("203.0.113.5", "1.2.3.4"), "203.0.113.5");  // spoofing client
  EXPECT_EQ(resolver.resolve("10.1.2.3", "198.51.100.7"), "198.51.100.7");
  // A client may prepend anything; the right-most untrusted hop is the real client.
  EXPECT_EQ(resolver.resolve("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.9.9.9"), "198.51.100.7");
  EXPECT_EQ(resolver.resolve("::1", "2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(resolver.resolve("10.1.2.3", ""), "10.1.2.3");
  EXPECT_TRUE(resolver.is_trusted("10.255.0.1"));
  EXPECT_FALSE(resolver.is_trusted("11.0.0.1"));
  EXPECT_THROW(ClientAddressResolver({"10.0.0.0/33"}), std::invalid_argument);
  EXPECT_THROW(ClientAddressResolver({"not-an-ip"}), std::invalid_argument);
}

TEST(ClientAddress, PrefixBoundaries) {
  ClientAddressResolver resolver({"192.168.4.0/22"});
  EXPECT_TRUE(resolver.is_trusted("192.168.7.255"));
  EXPECT_FALSE(resolver.is_trusted("192.168.8.0"));
}

}  // namespace
}  // namespace trellis::gateway
