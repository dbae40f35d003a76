#include "trellis/orders/order.h"

#include <array>
#include <utility>

namespace trellis::orders {
namespace {

constexpr std::array<std::pair<OrderStatus, std::string_view>, 4> kStatusNames = {{
    {OrderStatus::kPending, "PENDING"},
    {OrderStatus::kConfirmed, "CONFIRMED"},
    {OrderStatus::kShipped, "SHIPPED"},
    {OrderStatus::kCancelled, "CANCELLED"},
}};

struct Transition {
  OrderStatus from;
  OrderAction action;
  OrderStatus to;
};

// The whole status machine; anything not listed is illegal (409).
constexpr std::array<Transition, 4> kTransitions = {{
    {OrderStatus::kPending, OrderAction::kConfirm, OrderStatus::kConfirmed},
    {OrderStatus::kConfirmed, OrderAction::kShip, OrderStatus::kShipped},
    {OrderStatus::kPending, OrderAction::kCancel, OrderStatus::kCancelled},
    {OrderStatus::kConfirmed, OrderAction::kCancel, OrderStatus::kCancelled},
}};

}  // namespace

std::string_view to_string(OrderStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "UNKNOWN";
}

std::optional<OrderStatus> parse_status(std::string_view text) {
  for (const auto& [value, name] : kStatusNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

std::string_view to_string(OrderAction action) {
  switch (action) {
    case OrderAction::kConfirm:
      return "confirm";
    case OrderAction::kShip:
      return "ship";
    case OrderAction::kCancel:
      return "cancel";
  }
  return "unknown";
}

std::optional<OrderStatus> next_status(OrderStatus from, OrderAction action) {
  for (const auto& transition : kTransitions) {
    if (transition.from == from && transition.action == action) return transition.to;
  }
  return std::nullopt;
}

std::string event_type_for(OrderStatus entered) {
  switch (entered) {
    case OrderStatus::kPending:
      return std::string(kOrderCreatedEvent);
    case OrderStatus::kConfirmed:
      return "order.confirmed";
    case OrderStatus::kShipped:
      return "order.shipped";
    case OrderStatus::kCancelled:
      return "order.cancelled";
  }
  return "order.unknown";
}

}  // namespace trellis::orders
