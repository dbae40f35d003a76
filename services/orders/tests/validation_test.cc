#include "trellis/orders/validation.h"

#include <gtest/gtest.h>

#include <limits>

namespace trellis::orders {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

std::string check(const std::vector<LineItem>& items, const std::string& currency = "EUR") {
  NewOrder out;
  return check_new_order(items, currency, out);
}

TEST(OrderValidation, ComputesTheTotalInCents) {
  NewOrder out;
  ASSERT_EQ(check_new_order({{"SKU-1", 2, 1999}, {"sku_2.b/x", 1, 0}, {"C", 3, 5}}, "EUR", out),
            "");
  EXPECT_EQ(out.total_cents, 2 * 1999 + 0 + 15);
  EXPECT_EQ(out.currency, "EUR");
  EXPECT_EQ(out.items.size(), 3u);
}

TEST(OrderValidation, NamesTheFieldAtFault) {
  EXPECT_EQ(check({}), "items must contain at least 1 item");
  EXPECT_EQ(check(std::vector<LineItem>(101, {"A", 1, 1})), "items must contain at most 100 items");
  EXPECT_EQ(check(std::vector<LineItem>(100, {"A", 1, 1})), "");
  EXPECT_EQ(check({{"A", 1, 1}, {"B", 1, 1}, {"C", 0, 1}}), "items[2].quantity must be at least 1");
  EXPECT_EQ(check({{"A", -5, 1}}), "items[0].quantity must be at least 1");
  EXPECT_EQ(check({{"A", 1, 1}, {"B", 1, -1}}), "items[1].unit_price_cents must be at least 0");
  EXPECT_EQ(check({{"", 1, 1}}), "items[0].sku is required");
  EXPECT_EQ(check({{std::string(65, 'a'), 1, 1}}), "items[0].sku must be at most 64 characters");
  EXPECT_EQ(check({{std::string(64, 'a'), 1, 1}}), "");
  EXPECT_EQ(check({{"a b", 1, 1}}),
            "items[0].sku may contain only letters, digits, '-', '_', '.' and '/'");
  EXPECT_EQ(check({{"caf\xc3\xa9", 1, 1}}),
            "items[0].sku may contain only letters, digits, '-', '_', '.' and '/'");
}

TEST(OrderValidation, RefusesATotalThatOverflows) {
  EXPECT_EQ(check({{"A", 1, kMax}}), "");
  EXPECT_EQ(check({{"A", 2, kMax / 2 + 1}}),
            "items[0] makes total_cents exceed 9223372036854775807");
  EXPECT_EQ(check({{"A", 1, kMax / 2 + 1}, {"B", 1, kMax / 2 + 1}}),
            "items[1] makes total_cents exceed 9223372036854775807");
  EXPECT_EQ(check({{"A", std::numeric_limits<int32_t>::max(), kMax / 1000}}),
            "items[0] makes total_cents exceed 9223372036854775807");
  NewOrder out;
  ASSERT_EQ(check_new_order({{"A", 1, kMax - 1}, {"B", 1, 1}}, "USD", out), "");
  EXPECT_EQ(out.total_cents, kMax);
}

TEST(OrderValidation, AcceptsOnlyIso4217Codes) {
  for (const char* code : {"EUR", "USD", "JPY", "CHF", "GBP", "XOF", "ZWG"}) {
    EXPECT_EQ(check({{"A", 1, 1}}, code), "") << code;
  }
  EXPECT_EQ(check({{"A", 1, 1}}, ""), "currency is required");
  for (const char* code : {"eur", "Eur", "EU", "EURO", "ABC", "XXX", "XTS", "XAU", " EU"}) {
    EXPECT_EQ(check({{"A", 1, 1}}, code),
              "currency must be an ISO 4217 code in upper case, such as EUR or USD")
        << code;
  }
}

TEST(OrderValidation, OrderIdsAreUuids) {
  EXPECT_TRUE(is_uuid("0b6f7a52-2c57-4a43-9d0f-3f1a2a1e3c11"));
  EXPECT_FALSE(is_uuid("0b6f7a52-2c57-4a43-9d0f-3f1a2a1e3c1"));
  EXPECT_FALSE(is_uuid("0b6f7a52x2c57-4a43-9d0f-3f1a2a1e3c11"));
  EXPECT_FALSE(is_uuid("' OR 1=1 --"));
  EXPECT_FALSE(is_uuid(""));
}

}  // namespace
}  // namespace trellis::orders
