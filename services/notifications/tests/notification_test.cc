#include "trellis/notifications/notification.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "trellis/notifications/notification_proto.h"
#include "trellis/notifications/pusher.h"

namespace trellis::notifications {
namespace {

const std::string kUser = "0b6a1f34-2c1d-4e5f-8a9b-0c1d2e3f4a5b";
const std::string kOrder = "9f8e7d6c-5b4a-4c3d-9e2f-1a0b9c8d7e6f";

std::map<std::string, std::string> event(std::string type) {
  return {{"event_id", "42"},
          {"type", std::move(type)},
          {"user_id", kUser},
          {"order_id", kOrder},
          {"payload", "{}"}};
}

TEST(OrderEventMapping, EveryOrderEventNamesWhatHappened) {
  for (auto [type, verb] :
       std::vector<std::pair<std::string, std::string>>{{"order.created", "placed"},
                                                        {"order.confirmed", "confirmed"},
                                                        {"order.shipped", "shipped"},
                                                        {"order.cancelled", "cancelled"}}) {
    auto n = notification_for_order_event("s", event(type));
    ASSERT_TRUE(n) << type;
    EXPECT_EQ(n->title, "Order 9f8e7d6c " + verb);
    EXPECT_EQ(n->type, type);
    EXPECT_EQ(n->event_id, 42);
    EXPECT_EQ(n->user_id, kUser);
    EXPECT_EQ(n->order_id, kOrder);
    EXPECT_EQ(n->source, "s");
  }
}

TEST(OrderEventMapping, UnknownTypesNotifyNobody) {
  EXPECT_FALSE(notification_for_order_event("s", event("order.refunded")));
}

TEST(OrderEventMapping, MalformedEventsArePoison) {
  auto without = [](const char* name) {
    auto fields = event("order.created");
    fields.erase(name);
    return fields;
  };
  for (const char* name : {"event_id", "type", "user_id", "order_id"}) {
    EXPECT_THROW(notification_for_order_event("s", without(name)), PoisonEvent) << name;
  }
  for (const char* bad_id : {"0", "-1", "12x", "", "99999999999999999999"}) {
    auto fields = event("order.created");
    fields["event_id"] = bad_id;
    EXPECT_THROW(notification_for_order_event("s", fields), PoisonEvent) << bad_id;
  }
  auto fields = event("order.created");
  fields["user_id"] = "not-a-uuid";
  EXPECT_THROW(notification_for_order_event("s", fields), PoisonEvent);
}

NotificationRecord sample() {
  NotificationRecord n;
  n.id = "11111111-2222-4333-8444-555555555555";
  n.user_id = kUser;
  n.type = "order.confirmed";
  n.order_id = kOrder;
  n.title = "Order 9f8e7d6c confirmed";
  n.created_at_us = 1764355200123456;
  return n;
}

TEST(NotificationJson, RendersAsTheApiDoes) {
  auto json = nlohmann::json::parse(api_json(sample()));
  EXPECT_EQ(json["id"], "11111111-2222-4333-8444-555555555555");
  EXPECT_EQ(json["type"], "order.confirmed");
  EXPECT_EQ(json["order_id"], kOrder);
  EXPECT_EQ(json["read"], false);
  EXPECT_EQ(json["created_at"], "2025-11-28T18:40:00.123456Z");
  EXPECT_FALSE(json.contains("read_at"));
  auto read = sample();
  read.read_at_us = read.created_at_us + 1000000;
  EXPECT_EQ(nlohmann::json::parse(api_json(read))["read"], true);
}

TEST(Pusher, OneScriptWritesTheUserStreamAndTheFanOutStream) {
  PushConfig config;
  auto command = Pusher(config).push_command(sample());
  ASSERT_EQ(command.size(), 10u);
  EXPECT_EQ(command[0], "EVAL");
  EXPECT_EQ(command[2], "2");
  EXPECT_EQ(command[3], "trellis:notifications:user:" + kUser);
  EXPECT_EQ(command[4], "trellis:notifications:push");
  EXPECT_EQ(command[5], "1000");
  EXPECT_EQ(command[6], "604800000");
  EXPECT_EQ(nlohmann::json::parse(command[7])["id"], sample().id);
  EXPECT_EQ(command[8], "100000");
  EXPECT_EQ(command[9], kUser);
}

}  // namespace
}  // namespace trellis::notifications
