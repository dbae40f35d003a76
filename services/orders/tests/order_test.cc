#include "trellis/orders/order.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>

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
