// Integration tests of RedisClient against a real Redis (TRELLIS_TEST_REDIS_HOST/PORT, set by
// `./trellis test`). Server-side stalls and kills are aimed at this test's own connection only
// (BLPOP on a private key, CLIENT KILL ID), so tests running in parallel are not disturbed.
#include "redis_test_support.h"

#include <algorithm>
#include <atomic>
#include <mutex>

namespace {

using namespace trellis::testing::redis;

void expect_status(const RedisResult& result, const std::string& status) {
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.reply.type, RedisReply::Type::kStatus);
  EXPECT_EQ(result.reply.str, status);
}

void expect_integer(const RedisResult& result, long long value) {
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.reply.type, RedisReply::Type::kInteger);
  EXPECT_EQ(result.reply.integer, value);
}

void expect_string(const RedisResult& result, const std::string& value) {
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.reply.type, RedisReply::Type::kString);
  EXPECT_EQ(result.reply.str, value);
}

void expect_nil(const RedisResult& result) {
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.reply.type, RedisReply::Type::kNil);
}

TEST_F(RedisClientTest, CommandsReturnValuesOfEveryReplyType) {
  auto client = connected_client();
  const std::string name = key("name");
  const std::string counter = key("counter");

  expect_status(run(*client, {"SET", name, "trellis"}), "OK");
  expect_string(run(*client, {"GET", name}), "trellis");
  expect_integer(run(*client, {"EXISTS", name}), 1);
  expect_integer(run(*client, {"EXPIRE", name, "100"}), 1);
  auto ttl = run(*client, {"TTL", name});
  ASSERT_TRUE(ttl.ok);
  EXPECT_GT(ttl.reply.integer, 0);
  EXPECT_LE(ttl.reply.integer, 100);
  expect_integer(run(*client, {"INCR", counter}), 1);
  expect_integer(run(*client, {"INCR", counter}), 2);
  expect_integer(run(*client, {"DEL", name}), 1);
  expect_nil(run(*client, {"GET", name}));
  expect_integer(run(*client, {"EXISTS", name}), 0);
  expect_status(run(*client, {"PING"}), "PONG");

  auto mget = run(*client, {"MGET", counter, key("missing"), counter});
  ASSERT_TRUE(mget.ok);
  ASSERT_EQ(mget.reply.type, RedisReply::Type::kArray);
  ASSERT_EQ(mget.reply.elements.size(), 3u);
  EXPECT_EQ(mget.reply.elements[0].type, RedisReply::Type::kString);
  EXPECT_EQ(mget.reply.elements[0].str, "2");
  EXPECT_EQ(mget.reply.elements[1].type, RedisReply::Type::kNil);
  EXPECT_EQ(mget.reply.elements[2].str, "2");

  auto empty = run(*client, {"MGET", key("missing")});
  ASSERT_TRUE(empty.ok);
  ASSERT_EQ(empty.reply.type, RedisReply::Type::kArray);
  ASSERT_EQ(empty.reply.elements.size(), 1u);

  // A Redis error reply is a transport success carrying a kError reply.
  expect_status(run(*client, {"SET", name, "not a number"}), "OK");
  auto error = run(*client, {"INCR", name});
  ASSERT_TRUE(error.ok) << error.error;
  EXPECT_EQ(error.reply.type, RedisReply::Type::kError);
  EXPECT_EQ(error.reply.str.rfind("ERR", 0), 0u) << error.reply.str;
  auto unknown = run(*client, {"NO-SUCH-COMMAND"});
  ASSERT_TRUE(unknown.ok);
  EXPECT_EQ(unknown.reply.type, RedisReply::Type::kError);
  // The connection is fine after error replies.
  expect_status(run(*client, {"PING"}), "PONG");
}

TEST_F(RedisClientTest, ArgumentsAndValuesAreBinarySafe) {
  auto client = connected_client();
  const std::string binary_key = key(std::string("k\0ey\r\n", 6));
  const std::string value = std::string("a\0b\r\n$3\r\n\xff\xfe\x00z", 14);
  expect_status(run(*client, {"SET", binary_key, value}), "OK");
  expect_string(run(*client, {"GET", binary_key}), value);
  // An independent client sees exactly the same bytes.
  auto stored = admin_->command({"GET", binary_key});
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(std::string(stored->str, stored->len), value);
  expect_integer(run(*client, {"STRLEN", binary_key}), 14);
  expect_string(run(*client, {"ECHO", ""}), "");
}

TEST_F(RedisClientTest, LargeValuesCrossManySocketReadsAndWrites) {
  auto client = connected_client();
  // hiredis reads 16 KiB per call and the socket buffers hold less than 4 MiB: this needs the
  // adapter to keep reading and writing until the kernel buffers are drained.
  std::string big(4 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  const std::string big_key = key("big");
  RedisOptions patient = options_;
  patient.command_timeout_ms = 10000;
  auto slow_client = connected_client(patient);
  expect_status(run(*slow_client, {"SET", big_key, big}), "OK");
  expect_string(run(*slow_client, {"GET", big_key}), big);
  expect_status(run(*client, {"PING"}), "PONG");
}

TEST_F(RedisClientTest, ConcurrentCommandsFromIoThreadsCompleteExactlyOnce) {
  RedisOptions patient = options_;
  patient.command_timeout_ms = 10000;  // slow under valgrind/sanitizers; correctness is the point
  auto client = connected_client(patient);
  const std::string counter = key("concurrent-counter");
  constexpr int kCommands = 2000;

  std::vector<std::atomic<int>> calls(kCommands);
  std::atomic<int> completed{0};
  std::atomic<int> wrong{0};
  std::mutex mutex;
  std::vector<long long> increments;

  for (int i = 0; i < kCommands; ++i) {
    boost::asio::post(io_.io, [&, i] {
      auto check = [&, i](RedisResult result) {
        if (!io_.is_io_thread()) ++wrong;
        if (!result.ok) {
          ++wrong;
        } else if (i % 2 == 0) {
          if (result.reply.type != RedisReply::Type::kString ||
              result.reply.str != "value-" + std::to_string(i)) {
            ++wrong;
          }
        } else {
          std::lock_guard lock(mutex);
          increments.push_back(result.reply.integer);
        }
        ++calls[i];
        ++completed;
      };
      if (i % 2 == 0) {
        client->command({"ECHO", "value-" + std::to_string(i)}, check);
      } else {
        client->command({"INCR", counter}, check);
      }
    });
  }
  ASSERT_TRUE(wait_until([&] { return completed.load() >= kCommands; }, 30s))
      << completed.load() << " of " << kCommands << " callbacks";
  std::this_thread::sleep_for(100ms);  // a duplicate callback would show up here
  EXPECT_EQ(completed.load(), kCommands);
  EXPECT_EQ(wrong.load(), 0);
  for (int i = 0; i < kCommands; ++i) ASSERT_EQ(calls[i].load(), 1) << "command " << i;
  std::sort(increments.begin(), increments.end());
  ASSERT_EQ(increments.size(), size_t{kCommands / 2});
  for (int i = 0; i < kCommands / 2; ++i) ASSERT_EQ(increments[i], i + 1);
  expect_string(run(*client, {"GET", counter}), std::to_string(kCommands / 2));
}

TEST_F(RedisClientTest, CallbacksMayIssueMoreCommands) {
  auto client = connected_client();
  const std::string counter = key("chain");
  auto promise = std::make_shared<std::promise<long long>>();
  auto future = promise->get_future();
  std::function<void(RedisResult)> step = [&](RedisResult result) {
    if (!result.ok) return promise->set_value(-1);
    if (result.reply.integer == 10) return promise->set_value(10);
    client->command({"INCR", counter}, step);
  };
  client->command({"INCR", counter}, step);
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(future.get(), 10);
}

TEST_F(RedisClientTest, FailsFastWhenNothingListens) {
  RedisOptions options = options_;
  options.host = "127.0.0.1";
  options.port = unused_local_port();
  auto client = RedisClient::create(io_.io, options);

  auto before_start = run(*client, {"PING"});
  EXPECT_FALSE(before_start.ok);
  EXPECT_EQ(before_start.error, "not connected");

  client->start();
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto started = Clock::now();
    auto result = run(*client, {"GET", "anything"});
    EXPECT_LT(elapsed_ms(started), 100);
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.error, "not connected");
    EXPECT_FALSE(client->connected());
    std::this_thread::sleep_for(100ms);  // let some connect attempts fail meanwhile
  }
}

TEST_F(RedisClientTest, CommandTimesOutAndClientStaysUsable) {
  RedisOptions options = options_;
  options.command_timeout_ms = 100;
  auto client = connected_client(options);
  const std::string list = key("never-filled");

  // BLPOP stalls this connection for 600 ms (and only this one): the GET queued behind it gets no
  // reply in time. Its late reply, and BLPOP's, must be ignored safely.
  auto blpop_calls = std::make_shared<std::atomic<int>>(0);
  auto blpop_error = std::make_shared<std::promise<std::string>>();
  client->command({"BLPOP", list, "0.6"}, [blpop_calls, blpop_error](RedisResult result) {
    if (++*blpop_calls == 1) blpop_error->set_value(result.ok ? "ok" : result.error);
  });
  auto started = Clock::now();
  auto stalled = run(*client, {"GET", key("stalled")});
  auto waited = elapsed_ms(started);
  EXPECT_FALSE(stalled.ok);
  EXPECT_EQ(stalled.error, "timeout");
  EXPECT_GE(waited, 95);
  EXPECT_LE(waited, 200);  // ~150 ms asked for, plus slack for a machine busy compiling
  EXPECT_EQ(blpop_error->get_future().get(), "timeout");
  EXPECT_TRUE(client->connected());

  // Usable again once the server answers (after ~600 ms), with late replies discarded.
  const std::string name = key("after-timeout");
  bool recovered = wait_until([&] { return run(*client, {"SET", name, "fine"}).ok; }, 2s);
  EXPECT_TRUE(recovered);
  expect_string(run(*client, {"GET", name}), "fine");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(blpop_calls->load(), 1);
}

TEST_F(RedisClientTest, ReconnectsAfterTheServerKillsTheConnection) {
  RedisOptions options = options_;
  options.command_timeout_ms = 3000;
  auto client = connected_client(options);
  auto id = run(*client, {"CLIENT", "ID"});
  ASSERT_TRUE(id.ok);
  ASSERT_EQ(id.reply.type, RedisReply::Type::kInteger);

  // A command waiting on the server when the connection dies fails with "connection lost".
  auto pending = std::make_shared<std::promise<RedisResult>>();
  client->command({"BLPOP", key("never-filled"), "5"},
                  [pending](RedisResult result) { pending->set_value(std::move(result)); });
  std::this_thread::sleep_for(50ms);

  auto killed = admin_->command({"CLIENT", "KILL", "ID", std::to_string(id.reply.integer)});
  ASSERT_NE(killed, nullptr);
  ASSERT_EQ(killed->integer, 1) << "CLIENT KILL did not find the client";
  auto killed_at = Clock::now();

  auto lost = pending->get_future();
  ASSERT_EQ(lost.wait_for(2s), std::future_status::ready);
  auto lost_result = lost.get();
  EXPECT_FALSE(lost_result.ok);
  EXPECT_EQ(lost_result.error, "connection lost");

  bool back = wait_until([&] { return run(*client, {"PING"}).ok; }, 2s);
  EXPECT_TRUE(back) << "no successful command within 2 s of the kill";
  EXPECT_LT(elapsed_ms(killed_at), 2000);
  EXPECT_TRUE(client->connected());
  auto new_id = run(*client, {"CLIENT", "ID"});
  ASSERT_TRUE(new_id.ok);
  EXPECT_NE(new_id.reply.integer, id.reply.integer);
}

TEST_F(RedisClientTest, StopFailsEveryPendingCommandExactlyOnce) {
  RedisOptions options = options_;
  options.command_timeout_ms = 5000;
  auto client = connected_client(options);
  constexpr int kCommands = 101;
  std::vector<std::atomic<int>> calls(kCommands);
  std::atomic<int> stopped{0};
  std::atomic<int> completed{0};
  auto record = [&](int i) {
    return [&, i](RedisResult result) {
      if (!result.ok && result.error == "stopped") ++stopped;
      ++calls[i];
      ++completed;
    };
  };
  // BLPOP holds the connection, so everything behind it is still pending at stop().
  client->command({"BLPOP", key("never-filled"), "2"}, record(0));
  for (int i = 1; i < kCommands; ++i) client->command({"GET", key("pending")}, record(i));
  std::this_thread::sleep_for(50ms);

  std::thread other([&] { client->stop(); });  // from a non-io thread, twice: idempotent
  client->stop();
  other.join();
  EXPECT_FALSE(client->connected());
  ASSERT_TRUE(wait_until([&] { return completed.load() >= kCommands; }, 2s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(completed.load(), kCommands);
  EXPECT_EQ(stopped.load(), kCommands);
  for (int i = 0; i < kCommands; ++i) EXPECT_EQ(calls[i].load(), 1) << "command " << i;

  auto after = run(*client, {"PING"});
  EXPECT_FALSE(after.ok);
  EXPECT_EQ(after.error, "stopped");
  client->start();  // a stopped client stays stopped
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(client->connected());
}

TEST_F(RedisClientTest, DestroyingClientsWhileIoThreadsRunIsSafe) {
  RedisOptions options = options_;
  options.command_timeout_ms = 5000;
  std::atomic<int> issued{0};
  std::atomic<int> completed{0};
  for (int round = 0; round < 10; ++round) {
    auto client = connected_client(options);
    for (int i = 0; i < 200; ++i) {
      ++issued;
      client->command({"INCR", key("destroy")}, [&](RedisResult) { ++completed; });
    }
    if (round % 2 == 0) {
      // stop() from an io thread, then drop the last reference from this thread at once.
      boost::asio::post(io_.io, [client] { client->stop(); });
    }
    // Odd rounds: the destructor stops the client with commands in flight.
    client.reset();
  }
  // A client dropped by an io-thread callback while its own commands complete.
  {
    auto client = connected_client(options);
    auto holder = std::make_shared<std::shared_ptr<RedisClient>>(client);
    auto dropped = std::make_shared<std::atomic<bool>>(false);
    for (int i = 0; i < 50; ++i) {
      ++issued;
      client->command({"PING"}, [&, holder, dropped](RedisResult) {
        if (!dropped->exchange(true)) holder->reset();
        ++completed;
      });
    }
  }
  ASSERT_TRUE(wait_until([&] { return completed.load() == issued.load(); }, 5s))
      << completed.load() << " of " << issued.load();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(completed.load(), issued.load());
}

TEST_F(RedisClientTest, WrongPasswordNeverConnects) {
  RedisOptions options = options_;
  options.password = "not-the-password";
  options.reconnect_backoff_ms = 50;
  auto client = RedisClient::create(io_.io, options);
  client->start();
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(client->connected());
  auto result = run(*client, {"PING"});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error, "not connected");
}

TEST_F(RedisClientTest, RefusesCommandsThatBreakReplyPairing) {
  auto client = connected_client();
  for (const auto& args : std::vector<std::vector<std::string>>{{"SUBSCRIBE", "x"},
                                                                {"psubscribe", "x*"},
                                                                {"MONITOR"},
                                                                {"client", "REPLY", "OFF"},
                                                                {"HELLO", "3"}}) {
    auto result = run(*client, args);
    EXPECT_FALSE(result.ok) << args[0];
    EXPECT_EQ(result.error, "unsupported command");
  }
  auto empty = run(*client, {});
  EXPECT_FALSE(empty.ok);
  EXPECT_EQ(empty.error, "empty command");
  expect_status(run(*client, {"PING"}), "PONG");
}

TEST_F(RedisClientTest, ResolvesHostNamesWithoutBlocking) {
  if (options_.host != "127.0.0.1") GTEST_SKIP() << "only meaningful with a loopback server";
  RedisOptions options = options_;
  options.host = "localhost";
  auto client = connected_client(options);
  expect_status(run(*client, {"PING"}), "PONG");
}

TEST_F(RedisClientTest, SubscriberRunsItsSetupThenDeliversMessagesInOrderAndResubscribes) {
  using trellis::gateway::RedisSubscription;
  const auto channel = prefix_ + "channel";
  const auto seen_id = key("seen-id");
  // Shared with the callbacks: the client's shutdown may still report after the test body.
  struct Events {
    std::mutex mutex;
    std::vector<std::string> list;
  };
  auto events = std::make_shared<Events>();
  auto saw = [events](const std::string& event) {
    std::lock_guard lock(events->mutex);
    return std::count(events->list.begin(), events->list.end(), event);
  };
  RedisSubscription subscription;
  // The placeholder becomes the connection's own id: SET records it for the test to kill.
  subscription.setup = {{"SET", seen_id, RedisSubscription::kClientIdPlaceholder}};
  subscription.channels = {channel};
  subscription.on_message = [events, channel](const std::string& from, const RedisReply& payload) {
    std::lock_guard lock(events->mutex);
    events->list.push_back(from == channel ? "message:" + payload.str : "foreign:" + from);
  };
  subscription.on_subscribed = [events](bool up) {
    std::lock_guard lock(events->mutex);
    events->list.push_back(up ? "up" : "down");
  };
  auto client = RedisClient::create_subscriber(io_.io, options_, subscription);
  client->start();
  ASSERT_TRUE(wait_until([&] { return saw("up") == 1; }, 3s));
  EXPECT_TRUE(client->connected());
  auto refused = run(*client, {"GET", seen_id});
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.error, "subscriber connection");

  for (const char* payload : {"a", "b", "c"}) admin_->command({"PUBLISH", channel, payload});
  ASSERT_TRUE(wait_until([&] { return saw("message:c") == 1; }, 3s));
  {
    std::lock_guard lock(events->mutex);
    EXPECT_EQ(events->list,
              (std::vector<std::string>{"up", "message:a", "message:b", "message:c"}));
  }

  auto id = admin_->command({"GET", seen_id});
  ASSERT_TRUE(id && id->type == REDIS_REPLY_STRING);
  auto killed = admin_->command({"CLIENT", "KILL", "ID", std::string(id->str, id->len)});
  ASSERT_TRUE(killed && killed->type == REDIS_REPLY_INTEGER);
  EXPECT_EQ(killed->integer, 1);
  ASSERT_TRUE(wait_until([&] { return saw("down") == 1 && saw("up") == 2; }, 5s));
  admin_->command({"PUBLISH", channel, "d"});
  ASSERT_TRUE(wait_until([&] { return saw("message:d") == 1; }, 3s));
  client->stop();
}

}  // namespace
