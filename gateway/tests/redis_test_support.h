// Shared by the Redis integration tests: io threads, a blocking admin connection, and a fixture
// that finds the test Redis (TRELLIS_TEST_REDIS_HOST/PORT, set by `./trellis test`) and deletes
// the keys a test used.
#pragma once

#include "trellis/gateway/redis_client.h"

// Boost 1.74's Asio with g++ 12 in C++20 needs <utility> before it (see shared/TOOLCHAIN.md).
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "trellis/testing/support.h"

namespace trellis::testing::redis {

using trellis::testing::wait_until;

using namespace std::chrono_literals;
using trellis::gateway::RedisClient;
using trellis::gateway::RedisOptions;
using trellis::gateway::RedisReply;
using trellis::gateway::RedisResult;
using Clock = std::chrono::steady_clock;

inline long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// Set while a test thread is inside RedisClient::command(), to prove callbacks are never inline.
inline thread_local bool inside_command = false;

// Runs one io_context on several threads: the client serializes its work on its strand, so it is
// safe there too (the gateway runs each of its loops on one thread).
class IoThreads {
 public:
  explicit IoThreads(int count) : guard_(boost::asio::make_work_guard(io)) {
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this] { io.run(); });
    }
    for (const auto& thread : threads_) ids_.insert(thread.get_id());
  }
  ~IoThreads() {
    guard_.reset();
    // A stopped client must leave no work behind; do not hang the suite if it does.
    auto deadline = Clock::now() + 5s;
    while (!io.stopped() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    if (!io.stopped()) {
      ADD_FAILURE() << "io_context still had work 5 s after the test";
      io.stop();
    }
    for (auto& thread : threads_) thread.join();
  }
  bool is_io_thread() const { return ids_.count(std::this_thread::get_id()) == 1; }

  boost::asio::io_context io;

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
  std::set<std::thread::id> ids_;
};

// Issues a command and waits for its callback on the test thread (blocking is fine here).
inline RedisResult run(RedisClient& client, std::vector<std::string> args,
                       std::chrono::milliseconds wait = 5s) {
  auto promise = std::make_shared<std::promise<RedisResult>>();
  auto future = promise->get_future();
  inside_command = true;
  client.command(std::move(args), [promise](RedisResult result) {
    EXPECT_FALSE(inside_command) << "callback ran inline inside command()";
    promise->set_value(std::move(result));
  });
  inside_command = false;
  if (future.wait_for(wait) != std::future_status::ready) {
    ADD_FAILURE() << "no callback within " << wait.count() << " ms";
    return RedisResult{false, "test: no callback", {}};
  }
  return future.get();
}

// An independent, blocking hiredis connection for setup and for checking what the server holds.
class AdminConnection {
 public:
  AdminConnection(const std::string& host, int port) {
    context_ = redisConnectWithTimeout(host.c_str(), port, timeval{2, 0});
  }
  ~AdminConnection() {
    if (context_ != nullptr) redisFree(context_);
  }
  bool ok() const { return context_ != nullptr && context_->err == 0; }

  std::unique_ptr<redisReply, void (*)(void*)> command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    void* reply =
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data());
    return {static_cast<redisReply*>(reply), freeReplyObject};
  }

 private:
  redisContext* context_ = nullptr;
};

inline int unused_local_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* host = std::getenv("TRELLIS_TEST_REDIS_HOST");
    const char* port = std::getenv("TRELLIS_TEST_REDIS_PORT");
    if (host == nullptr || port == nullptr) {
      GTEST_FAIL() << "TRELLIS_TEST_REDIS_HOST and TRELLIS_TEST_REDIS_PORT are not set: run the "
                      "integration tests with `./trellis test`, which starts Redis for them";
    }
    options_.host = host;
    options_.port = std::atoi(port);
    admin_ = std::make_unique<AdminConnection>(options_.host, options_.port);
    ASSERT_TRUE(admin_->ok()) << "cannot reach Redis at " << host << ":" << port;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("trellis:test:") + info->test_suite_name() + ":" + info->name() + ":" +
              std::to_string(::getpid()) + ":";
  }

  void TearDown() override {
    if (admin_ && admin_->ok() && !keys_.empty()) {
      std::vector<std::string> del{"DEL"};
      del.insert(del.end(), keys_.begin(), keys_.end());
      admin_->command(del);
    }
  }

  // A key private to this test process; deleted after the test.
  std::string key(const std::string& name) {
    std::string full = prefix_ + name;
    keys_.insert(full);
    return full;
  }

  std::shared_ptr<RedisClient> connected_client(RedisOptions options) {
    auto client = RedisClient::create(io_.io, std::move(options));
    client->start();
    EXPECT_TRUE(wait_until([&] { return client->connected(); }, 3s)) << "client never connected";
    return client;
  }
  std::shared_ptr<RedisClient> connected_client() { return connected_client(options_); }

  IoThreads io_{4};
  RedisOptions options_;
  std::unique_ptr<AdminConnection> admin_;
  std::string prefix_;
  std::set<std::string> keys_;
};

}  // namespace trellis::testing::redis
