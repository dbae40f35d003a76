#include "trellis/notifications/notification.h"

#include <charconv>

#include "trellis/common/digest.h"

namespace trellis::notifications {
namespace {

const std::string& field(const std::map<std::string, std::string>& fields, const char* name) {
  auto it = fields.find(name);
  if (it == fields.end() || it->second.empty()) {
    throw PoisonEvent(std::string("event has no ") + name + " field");
  }
  return it->second;
}

// What happened to the order, for the title; empty for types that notify nobody.
std::string_view verb_of(const std::string& type) {
  if (type == "order.created") return "placed";
  if (type == "order.confirmed") return "confirmed";
  if (type == "order.shipped") return "shipped";
  if (type == "order.cancelled") return "cancelled";
  return {};
}

}  // namespace

std::optional<NewNotification> notification_for_order_event(
    const std::string& source, const std::map<std::string, std::string>& fields) {
  const auto& type = field(fields, "type");
  auto verb = verb_of(type);
  if (verb.empty()) return std::nullopt;
  NewNotification out;
  out.source = source;
  const auto& event_id = field(fields, "event_id");
  auto [end, error] =
      std::from_chars(event_id.data(), event_id.data() + event_id.size(), out.event_id);
  if (error != std::errc() || end != event_id.data() + event_id.size() || out.event_id <= 0) {
    throw PoisonEvent("event_id is not a positive integer");
  }
  out.user_id = field(fields, "user_id");
  if (!is_uuid(out.user_id)) throw PoisonEvent("user_id is not a UUID");
  out.order_id = field(fields, "order_id");
  if (!is_uuid(out.order_id)) throw PoisonEvent("order_id is not a UUID");
  out.type = type;
  out.title = "Order " + out.order_id.substr(0, 8) + " " + std::string(verb);
  return out;
}

}  // namespace trellis::notifications
