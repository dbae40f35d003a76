#include "trellis/orders/order.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>

#include "trellis/common/proto_json.h"
#include "trellis/orders/order_proto.h"

namespace trellis::orders {
namespace {

using S = OrderStatus;
using A = OrderAction;

TEST(StatusMachine, EveryStatusAndActionPair) {
  // The complete table: (from, action) → to; every pair not listed must be illegal.
  const std::map<std::pair<S, A>, S> legal = {
      {{S::kPending, A::kConfirm}, S::kConfirmed},
      {{S::kConfirmed, A::kShip}, S::kShipped},
      {{S::kPending, A::kCancel}, S::kCancelled},
      {{S::kConfirmed, A::kCancel}, S::kCancelled},
  };
  int checked = 0;
  for (S from : {S::kPending, S::kConfirmed, S::kShipped, S::kCancelled}) {
    for (A action : {A::kConfirm, A::kShip, A::kCancel}) {
      auto expected = legal.find({from, action});
      auto next = next_status(from, action);
      if (expected == legal.end()) {
        EXPECT_EQ(next, std::nullopt) << to_string(from) << " " << to_string(action);
      } else {
        EXPECT_EQ(next, expected->second) << to_string(from) << " " << to_string(action);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 12);
}

TEST(StatusMachine, NamesRoundTrip) {
  for (S status : {S::kPending, S::kConfirmed, S::kShipped, S::kCancelled}) {
    EXPECT_EQ(parse_status(to_string(status)), status);
  }
  EXPECT_EQ(to_string(S::kCancelled), "CANCELLED");
  EXPECT_EQ(parse_status("pending"), std::nullopt);
  EXPECT_EQ(parse_status(""), std::nullopt);
}

TEST(StatusMachine, EventTypes) {
  EXPECT_EQ(event_type_for(S::kPending), "order.created");
  EXPECT_EQ(event_type_for(S::kConfirmed), "order.confirmed");
  EXPECT_EQ(event_type_for(S::kShipped), "order.shipped");
  EXPECT_EQ(event_type_for(S::kCancelled), "order.cancelled");
}

TEST(Viewer, OwnersAndAdminsSeeAnOrder) {
  OrderRecord order;
  order.user_id = "u1";
  EXPECT_TRUE((Viewer{"u1", false}).may_see(order));
  EXPECT_FALSE((Viewer{"u2", false}).may_see(order));
  EXPECT_TRUE((Viewer{"u2", true}).may_see(order));
}

}  // namespace
}  // namespace trellis::orders

namespace trellis::orders {
namespace {

OrderRecord sample_order(std::mt19937_64& random) {
  auto pick = [&](std::string_view from, size_t length) {
    std::string out;
    for (size_t i = 0; i < length; ++i) out += from[random() % from.size()];
    return out;
  };
  const std::string_view hex = "0123456789abcdef";
  OrderRecord order;
  order.id = pick(hex, 8) + "-" + pick(hex, 4) + "-4" + pick(hex, 3) + "-a" + pick(hex, 3) + "-" +
             pick(hex, 12);
  order.user_id = pick(hex, 8) + "-0000-4000-8000-" + pick(hex, 12);
  order.status = static_cast<OrderStatus>(random() % 4);
  order.currency = pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 3);
  for (size_t i = 0, n = random() % 4; i < n; ++i) {
    order.items.push_back({pick("abcXYZ019-_./", 1 + random() % 64),
                           static_cast<int32_t>(random() % 3 == 0 ? 1 : random() % 1000000),
                           static_cast<int64_t>(random() % 3 == 0 ? 0 : random() >> 2)});
  }
  order.total_cents = static_cast<int64_t>(random() >> 1);
  // Whole seconds, whole milliseconds and arbitrary microseconds print differently.
  auto timestamp = [&] {
    int64_t us = static_cast<int64_t>(random() % 253402300799LL) * 1000000;
    switch (random() % 3) {
      case 0:
        return us;
      case 1:
        return us + static_cast<int64_t>(random() % 1000) * 1000;
      default:
        return us + static_cast<int64_t>(random() % 1000000);
    }
  };
  order.created_at_us = timestamp();
  order.updated_at_us = timestamp();
  return order;
}

// The reference: the same order through protobuf's own JSON printer.
std::string snapshot_json_by_printer(const OrderRecord& order) {
  v1::Order message;
  to_proto(order, &message);
  std::string json;
  if (!print_api_json_by_protobuf(message, json)) throw std::runtime_error("order not printable");
  return json;
}

TEST(SnapshotJson, SameBytesAsProtobufsPrinter) {
  std::mt19937_64 random(11);
  for (int round = 0; round < 3000; ++round) {
    auto order = sample_order(random);
    ASSERT_EQ(snapshot_json(order), snapshot_json_by_printer(order)) << "round " << round;
  }
  OrderRecord empty;  // no items, epoch timestamps, empty strings
  EXPECT_EQ(snapshot_json(empty), snapshot_json_by_printer(empty));
  EXPECT_NE(snapshot_json(empty).find("\"items\":[]"), std::string::npos);
}

TEST(SnapshotJson, TextThePrinterEscapesGoesThroughThePrinter) {
  std::mt19937_64 random(5);
  auto order = sample_order(random);
  order.items = {{"a<b>\"c\\", 1, 2}, {"caf\xC3\xA9\n", 3, 4}};
  auto json = snapshot_json(order);
  EXPECT_EQ(json, snapshot_json_by_printer(order));
  EXPECT_EQ(nlohmann::json::parse(json)["items"][0]["sku"], "a<b>\"c\\");
}

}  // namespace
}  // namespace trellis::orders
