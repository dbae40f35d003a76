#include "trellis/gateway/push_protocol.h"

#include <gtest/gtest.h>

namespace trellis::gateway {
namespace {

TEST(PushProtocol, StreamIdsParseAndCompareNumerically) {
  EXPECT_TRUE(parse_stream_id("1700000000000-0"));
  EXPECT_TRUE(parse_stream_id("0-0"));
  for (const char* bad : {"", "-", "1-", "-1", "1", "1-2-3", "a-1", "1-b", " 1-2", "1-2 ", "+1-2",
                          "123456789012345678901-0", "1-0; DROP"}) {
    EXPECT_FALSE(parse_stream_id(bad)) << bad;
  }
  // Numeric, not lexicographic: 9-0 < 10-0, and seq breaks ties.
  EXPECT_LT(*parse_stream_id("9-0"), *parse_stream_id("10-0"));
  EXPECT_LT(*parse_stream_id("10-2"), *parse_stream_id("10-10"));
  EXPECT_EQ(*parse_stream_id("10-2"), *parse_stream_id("10-2"));
  EXPECT_FALSE(*parse_stream_id("10-3") <= *parse_stream_id("10-2"));
}

TEST(PushProtocol, MessagesNeedAStreamIdAndNonEmptyJson) {
  EXPECT_TRUE(make_push_message("1-1", "{}"));
  EXPECT_FALSE(make_push_message("1-1", ""));
  EXPECT_FALSE(make_push_message("x", "{}"));
}

TEST(PushProtocol, SseFraming) {
  auto message = make_push_message("1700000000000-3", R"({"id":"n1","read":false})");
  EXPECT_EQ(sse_event(*message),
            "id: 1700000000000-3\nevent: notification\ndata: {\"id\":\"n1\",\"read\":false}\n\n");
  // A newline in the payload cannot end the event early or inject a field.
  auto multi = make_push_message("1-0", "{\"a\":1}\n\nid: 9-9\r\nx");
  EXPECT_EQ(sse_event(*multi),
            "id: 1-0\nevent: notification\ndata: {\"a\":1}\ndata: \ndata: id: 9-9\ndata: x\n\n");
  EXPECT_EQ(sse_end_event("token_expired"), "event: end\ndata: {\"code\":\"token_expired\"}\n\n");
  EXPECT_EQ(kSseHeartbeat, ": heartbeat\n\n");
  EXPECT_EQ(kSseRetry, "retry: 2000\n\n");
}

TEST(PushProtocol, WebSocketFraming) {
  auto message = make_push_message("5-1", R"({"id":"n1"})");
  EXPECT_EQ(websocket_notification(*message),
            R"({"type":"notification","id":"5-1","notification":{"id":"n1"}})");
}

TEST(PushProtocol, ResyncSignalHasNoEventId) {
  auto resync = make_resync_message(kResyncHistoryTruncated);
  EXPECT_EQ(sse_event(*resync), "event: resync\ndata: {\"code\":\"history_truncated\"}\n\n");
  EXPECT_EQ(websocket_notification(*make_resync_message(kResyncReplayUnavailable)),
            R"({"type":"resync","code":"replay_unavailable"})");
}

TEST(PushProtocol, SubprotocolTokenExtraction) {
  auto offer = parse_websocket_protocols("trellis.notifications.v1, bearer.aaa.bbb.ccc");
  EXPECT_TRUE(offer.offers_v1);
  EXPECT_EQ(offer.token, "aaa.bbb.ccc");
  offer = parse_websocket_protocols("bearer.t1,trellis.notifications.v1 , bearer.t2");
  EXPECT_TRUE(offer.offers_v1);
  EXPECT_EQ(offer.token, "t1");  // the first one counts
  offer = parse_websocket_protocols("chat, superchat");
  EXPECT_FALSE(offer.offers_v1);
  EXPECT_EQ(offer.token, "");
  offer = parse_websocket_protocols("bearer.");
  EXPECT_EQ(offer.token, "");
  EXPECT_FALSE(parse_websocket_protocols("trellis.notifications.v2").offers_v1);
}

TEST(PushProtocol, FirstMessageAuth) {
  EXPECT_EQ(token_from_auth_message(R"({"type":"auth","access_token":"a.b.c"})"), "a.b.c");
  for (const char* bad : {"", "auth", "[]", R"({"type":"auth"})", R"({"access_token":"a"})",
                          R"({"type":"hello","access_token":"a"})",
                          R"({"type":"auth","access_token":5})", "{\"type\":\"auth\","}) {
    EXPECT_EQ(token_from_auth_message(bad), "") << bad;
  }
}

TEST(PushProtocol, RequestInspection) {
  HttpRequest upgrade;
  upgrade.headers = {{"Connection", "keep-alive, Upgrade"}, {"Upgrade", "WebSocket"}};
  EXPECT_TRUE(is_websocket_upgrade(upgrade));
  HttpRequest plain;
  plain.headers = {{"Connection", "keep-alive"}, {"Upgrade", "websocket"}};
  EXPECT_FALSE(is_websocket_upgrade(plain));

  EXPECT_TRUE(accepts_event_stream("text/event-stream"));
  EXPECT_TRUE(accepts_event_stream("application/json, Text/Event-Stream;q=0.9"));
  EXPECT_FALSE(accepts_event_stream("text/event-stream;q=0"));
  EXPECT_FALSE(accepts_event_stream("*/*"));
  EXPECT_FALSE(accepts_event_stream("text/event-streams"));
  EXPECT_FALSE(accepts_event_stream(""));

  EXPECT_EQ(query_parameter("a=1&last_event_id=5-1", "last_event_id"), "5-1");
  EXPECT_EQ(query_parameter("last%5Fevent%5Fid=1%2D2", "last_event_id"), "1-2");
  EXPECT_EQ(query_parameter("a=1", "last_event_id"), std::nullopt);
  EXPECT_EQ(query_parameter("", "a"), std::nullopt);
}

TEST(OutboundQueue, CapsMessagesAndBytes) {
  OutboundQueue by_count(2, 1 << 20);
  EXPECT_TRUE(by_count.push(make_push_message("1-0", "{}")));
  EXPECT_TRUE(by_count.push(make_push_message("2-0", "{}")));
  EXPECT_FALSE(by_count.push(make_push_message("3-0", "{}")));
  EXPECT_EQ(by_count.size(), 2u);
  EXPECT_EQ(by_count.pop()->id, "1-0");
  EXPECT_TRUE(by_count.push(make_push_message("3-0", "{}")));  // room again after a pop

  auto big = make_push_message("1-0", std::string(1000, 'x'));
  OutboundQueue by_bytes(100, 2 * big->cost() + 10);
  EXPECT_TRUE(by_bytes.push(big));
  EXPECT_TRUE(by_bytes.push(big));
  EXPECT_FALSE(by_bytes.push(big));
  EXPECT_EQ(by_bytes.bytes(), 2 * big->cost());
  by_bytes.pop();
  by_bytes.pop();
  EXPECT_TRUE(by_bytes.empty());
  EXPECT_EQ(by_bytes.bytes(), 0u);
  EXPECT_EQ(by_bytes.pop(), nullptr);
}

TEST(OutboundQueue, ReplayGoesFirstInOrder) {
  OutboundQueue queue(10, 1 << 20);
  queue.push(make_push_message("5-0", "{}"));
  queue.pop();
  queue.push(make_push_message("6-0", "{}"));
  queue.prepend({make_push_message("3-0", "{}"), make_push_message("4-0", "{}")});
  std::vector<std::string> order;
  while (auto message = queue.pop()) order.push_back(message->id);
  EXPECT_EQ(order, (std::vector<std::string>{"3-0", "4-0", "6-0"}));
  EXPECT_EQ(queue.bytes(), 0u);
}

}  // namespace
}  // namespace trellis::gateway
