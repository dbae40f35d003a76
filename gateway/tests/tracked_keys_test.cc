// Integration tests of TrackedKeys against a real Redis. Each test tracks only its own key prefix,
// so tests (and gateways) sharing the server do not see each other's invalidations.
#include "trellis/gateway/tracked_keys.h"

#include "redis_test_support.h"

namespace {

using namespace trellis::testing::redis;
using trellis::gateway::TrackedKeys;
using trellis::gateway::TrackedKeysOptions;
using Values = TrackedKeys::Values;

class TrackedKeysTest : public RedisClientTest {
 protected:
  // Heartbeats of 500 ms: a loaded machine must not make copies flap in tests not about them.
  std::unique_ptr<TrackedKeys> tracked(size_t max_keys = 100, int heartbeat_ms = 500) {
    reader_options_ = options_;
    reader_options_.command_timeout_ms = 3000;  // outlasts the BLPOP used to delay replies
    reader_ = connected_client(reader_options_);
    client_name_ = "trellis-test-tracking-" + std::to_string(::getpid()) + "-" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return std::make_unique<TrackedKeys>(
        io_.io, options_, reader_,
        TrackedKeysOptions{max_keys, heartbeat_ms, {prefix_}, client_name_}, registry_);
  }

  // Reads through `keys` and waits for the reply.
  RedisResult read(TrackedKeys& keys, std::vector<std::string> names) {
    auto promise = std::make_shared<std::promise<RedisResult>>();
    auto future = promise->get_future();
    keys.read(std::move(names),
              [promise](RedisResult result) { promise->set_value(std::move(result)); });
    if (future.wait_for(5s) != std::future_status::ready) {
      ADD_FAILURE() << "no reply";
      return {};
    }
    return future.get();
  }

  // The client id of the subscriber connection of the TrackedKeys made by tracked(), or "".
  std::string subscriber_id() {
    auto list = admin_->command({"CLIENT", "LIST", "TYPE", "pubsub"});
    if (!list || list->type != REDIS_REPLY_STRING) return "";
    std::string text(list->str, list->len);
    auto at = text.find(" name=" + client_name_ + " ");
    if (at == std::string::npos) return "";
    auto line = text.rfind("id=", at);
    return text.substr(line + 3, text.find(' ', line) - line - 3);
  }

  void kill_subscriber() {
    auto id = subscriber_id();
    ASSERT_FALSE(id.empty());
    auto killed = admin_->command({"CLIENT", "KILL", "ID", id});
    ASSERT_TRUE(killed && killed->type == REDIS_REPLY_INTEGER && killed->integer == 1);
  }

  trellis::metrics::Registry registry_;
  RedisOptions reader_options_;
  std::shared_ptr<RedisClient> reader_;
  std::string client_name_;
};

TEST_F(TrackedKeysTest, CopiesFollowChangesMadeByAnyClient) {
  auto keys = tracked();
  auto a = key("a"), b = key("b");
  admin_->command({"SET", a, "1"});
  EXPECT_FALSE(keys->lookup({a})) << "nothing is held before tracking is on";
  keys->start();
  ASSERT_TRUE(wait_until([&] { return keys->current(); }, 3s));
  EXPECT_FALSE(keys->lookup({a}));

  auto result = read(*keys, {a, b});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(keys->lookup({a, b}), (Values{"1", std::nullopt}));

  admin_->command({"SET", a, "2"});
  ASSERT_TRUE(wait_until([&] { return !keys->lookup({a}); }, 3s)) << "a change was not seen";
  ASSERT_TRUE(keys->current()) << "dropped for want of tracking, not by the invalidation";
  EXPECT_EQ(keys->lookup({b}), (Values{std::nullopt})) << "an unrelated copy was dropped";
  read(*keys, {a});
  EXPECT_EQ(keys->lookup({a}), (Values{"2"}));

  admin_->command({"SET", b, "x", "PX", "1500"});  // written, then expired: both invalidate
  ASSERT_TRUE(wait_until([&] { return !keys->lookup({b}); }, 3s));
  ASSERT_TRUE(keys->current());
  read(*keys, {b});
  EXPECT_EQ(keys->lookup({b}), (Values{"x"}));
  ASSERT_TRUE(wait_until([&] { return !keys->lookup({b}); }, 5s)) << "expiry was not seen";
  ASSERT_TRUE(keys->current());

  keys->forget(a);
  EXPECT_FALSE(keys->lookup({a}));
  auto untracked = "trellis:test:untracked:" + std::to_string(::getpid());
  read(*keys, {untracked});
  EXPECT_FALSE(keys->lookup({untracked})) << "a key outside the prefixes was kept";
  keys->stop();
}

TEST_F(TrackedKeysTest, AReadOvertakenByAnInvalidationIsNotKept) {
  // Heartbeats queue behind the BLPOP too: they must not go missing for 3 × 500 ms meanwhile.
  auto keys = tracked();
  auto a = key("a");
  admin_->command({"SET", a, "1"});
  keys->start();
  ASSERT_TRUE(wait_until([&] { return keys->current(); }, 3s));
  for (bool invalidated : {false, true}) {
    keys->forget(a);
    // A BLPOP ahead of it on the pipelined connection holds the MGET's reply back for 300 ms.
    reader_->command({"BLPOP", key("never"), "0.3"}, [](RedisResult) {});
    auto promise = std::make_shared<std::promise<RedisResult>>();
    keys->read({a}, [promise](RedisResult r) { promise->set_value(std::move(r)); });
    if (invalidated) {
      trellis::gateway::RedisReply message;
      message.type = trellis::gateway::RedisReply::Type::kArray;
      message.elements.resize(1);
      message.elements[0].type = trellis::gateway::RedisReply::Type::kString;
      message.elements[0].str = a;
      keys->on_message("__redis__:invalidate", message);
    }
    auto future = promise->get_future();
    ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
    auto result = future.get();
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.reply.elements.at(0).str, "1") << "the caller still gets the value";
    EXPECT_EQ(keys->lookup({a}).has_value(), !invalidated) << "invalidated: " << invalidated;
  }
  keys->stop();
}

TEST_F(TrackedKeysTest, ALostConnectionDropsEveryCopyAndTrackingComesBack) {
  auto keys = tracked();
  auto a = key("a");
  keys->start();
  ASSERT_TRUE(wait_until([&] { return keys->current(); }, 3s));
  read(*keys, {a});
  ASSERT_TRUE(keys->lookup({a}));
  kill_subscriber();
  ASSERT_TRUE(wait_until([&] { return !keys->lookup({a}); }, 3s));
  // Changes made while nobody listened are not seen: the copies are gone, not kept.
  admin_->command({"SET", a, "changed"});
  ASSERT_TRUE(wait_until([&] { return keys->current(); }, 5s)) << "tracking did not come back";
  EXPECT_FALSE(keys->lookup({a}));
  read(*keys, {a});
  EXPECT_EQ(keys->lookup({a}), (Values{"changed"}));
  // FLUSHALL's invalidation (a nil payload) drops everything; delivered directly here, since
  // the server is shared with other tests.
  keys->on_message("__redis__:invalidate", trellis::gateway::RedisReply{});
  EXPECT_FALSE(keys->lookup({a}));
  keys->stop();
}

trellis::gateway::RedisReply heartbeat(TrackedKeys::Clock::duration age = {}) {
  trellis::gateway::RedisReply reply;
  reply.type = trellis::gateway::RedisReply::Type::kString;
  reply.str = std::to_string((TrackedKeys::Clock::now() - age).time_since_epoch().count());
  return reply;
}

TEST_F(TrackedKeysTest, CopiesAreOnlyAsOldAsTheNewestHeartbeatThatCameBack) {
  auto keys = tracked(100, 200);  // not started: the test plays the subscriber
  keys->on_subscribed(true);
  EXPECT_FALSE(keys->current()) << "current before a heartbeat made the trip";
  keys->on_message(keys->heartbeat_channel(), heartbeat());
  EXPECT_TRUE(keys->current());
  std::this_thread::sleep_for(700ms);  // silence: more than 3 heartbeats of 200 ms
  EXPECT_FALSE(keys->current());
  keys->on_message(keys->heartbeat_channel(), heartbeat());
  EXPECT_TRUE(keys->current());
  // A lagging connection: heartbeats keep arriving, but each was sent long ago.
  keys->on_subscribed(true);
  for (int i = 0; i < 3; ++i) {
    keys->on_message(keys->heartbeat_channel(), heartbeat(700ms));
    EXPECT_FALSE(keys->current()) << "a heartbeat sent 700 ms ago made the copies current";
  }
  keys->on_message(keys->heartbeat_channel(), heartbeat());
  EXPECT_TRUE(keys->current());
  keys->on_subscribed(false);
  EXPECT_FALSE(keys->current());
}

TEST_F(TrackedKeysTest, ASubscriberThatHeartbeatsDoNotReachIsReconnected) {
  auto keys = tracked(100, 5000);  // the timer's own heartbeats stay out of the way
  keys->start();
  ASSERT_TRUE(wait_until([&] { return keys->current(); }, 3s));
  auto first = subscriber_id();
  ASSERT_FALSE(first.empty());
  // PUBLISH answered "0 receivers" three times in a row: like a subscriber left on a server that
  // no longer gets this gateway's writes.
  keys->on_heartbeat_published(0);
  keys->on_heartbeat_published(0);
  keys->on_heartbeat_published(1);  // one that arrived resets the count
  keys->on_heartbeat_published(0);
  keys->on_heartbeat_published(0);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(subscriber_id(), first) << "reconnected before three unheard heartbeats in a row";
  keys->on_heartbeat_published(0);
  ASSERT_TRUE(wait_until(
      [&] {
        auto now = subscriber_id();
        return !now.empty() && now != first;
      },
      5s))
      << "the subscriber was never reconnected";
  ASSERT_TRUE(wait_until([&] { return keys->current(); }, 5s));
  keys->stop();
}

TEST_F(TrackedKeysTest, AReaderThatCannotPublishLeavesTheSubscriberAlone) {
  RedisOptions nowhere = options_;
  nowhere.port = unused_local_port();
  auto reader = RedisClient::create(io_.io, nowhere);
  reader->start();
  client_name_ = "trellis-test-tracking-noreader-" + std::to_string(::getpid());
  TrackedKeys keys(io_.io, options_, reader, TrackedKeysOptions{100, 50, {prefix_}, client_name_},
                   registry_);
  keys.start();
  ASSERT_TRUE(wait_until([&] { return !subscriber_id().empty(); }, 3s));
  auto first = subscriber_id();
  std::this_thread::sleep_for(600ms);  // 12 heartbeats that could not be published
  EXPECT_EQ(subscriber_id(), first);
  EXPECT_FALSE(keys.current()) << "current without a heartbeat that came back";
  keys.stop();
  reader->stop();
}

TEST_F(TrackedKeysTest, HoldsAtMostMaxKeysDroppingTheLeastRecentlyUsed) {
  auto keys = tracked(2);
  auto a = key("a"), b = key("b"), c = key("c"), d = key("d");
  keys->start();
  ASSERT_TRUE(wait_until([&] { return keys->current(); }, 3s));
  read(*keys, {a, b, c});
  EXPECT_FALSE(keys->lookup({a}));
  ASSERT_TRUE(keys->lookup({b}));  // now b is the most recently used
  read(*keys, {d});
  EXPECT_TRUE(keys->lookup({b}));
  EXPECT_TRUE(keys->lookup({d}));
  EXPECT_FALSE(keys->lookup({c}));
  keys->stop();
}

}  // namespace
