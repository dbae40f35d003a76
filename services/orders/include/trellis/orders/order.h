// The order as the service's code sees it, and its status machine:
//   PENDING → CONFIRMED → SHIPPED,  PENDING | CONFIRMED → CANCELLED.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::orders {

enum class OrderStatus { kPending, kConfirmed, kShipped, kCancelled };

// "PENDING", "CONFIRMED", ... as stored in the database and shown to clients.
std::string_view to_string(OrderStatus status);
std::optional<OrderStatus> parse_status(std::string_view text);

enum class OrderAction { kConfirm, kShip, kCancel };

std::string_view to_string(OrderAction action);

// The status an action leads to from `from`, or nullopt when the transition is illegal.
std::optional<OrderStatus> next_status(OrderStatus from, OrderAction action);

// Outbox event type of entering a status: "order.confirmed", ...; "order.created" for creation.
std::string event_type_for(OrderStatus entered);
inline constexpr std::string_view kOrderCreatedEvent = "order.created";

struct LineItem {
  std::string sku;
  int32_t quantity = 0;
  int64_t unit_price_cents = 0;
};

// A validated request: items, currency and the total the server computed.
struct NewOrder {
  std::vector<LineItem> items;
  std::string currency;
  int64_t total_cents = 0;
};

struct OrderRecord {
  std::string id;   // UUID
  int64_t seq = 0;  // insertion order (identity column); never shown to clients
  std::string user_id;
  OrderStatus status = OrderStatus::kPending;
  std::vector<LineItem> items;
  int64_t total_cents = 0;
  std::string currency;
  int64_t created_at_us = 0;  // unix microseconds
  int64_t updated_at_us = 0;
};

// Who is asking: a user sees their own orders, an admin every order.
struct Viewer {
  std::string user_id;
  bool admin = false;

  bool may_see(const OrderRecord& order) const { return admin || order.user_id == user_id; }
};

}  // namespace trellis::orders
