// Integration tests of the connection pool against a real PostgreSQL server (the test runner
// provides it through TRELLIS_TEST_PG_*). Each test works in its own database.
#include "trellis/common/pg_pool.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>

#include "trellis/testing/support.h"

namespace trellis::db::test {

using Clock = std::chrono::steady_clock;

// Shared with migrator_test.cc (same test binary).
PgOptions server_options() {
  auto variable = [](const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
      throw std::runtime_error(std::string(name) +
                               " is not set: run the integration tests with ./trellis test");
    }
    return std::string(value);
  };
  PgOptions options;
  options.host = variable("TRELLIS_TEST_PG_HOST");
  options.port = std::stoi(variable("TRELLIS_TEST_PG_PORT"));
  options.user = variable("TRELLIS_TEST_PG_USER");
  options.dbname = "postgres";
  options.application_name = "trellis-db-tests";
  return options;
}

void admin_exec(const std::string& sql) {
  pqxx::connection admin(connection_string(server_options()));
  pqxx::nontransaction tx(admin);
  tx.exec(sql);
  tx.commit();
}

std::string quote_identifier(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// Unique per process and call, so test processes can run in parallel against one server.
PgOptions create_scratch_database(const std::string& name_suffix) {
  std::random_device random;
  auto options = server_options();
  options.dbname = "trellis_test_" + std::to_string(::getpid()) + "_" +
                   std::to_string(random() % 1000000) + name_suffix;
  admin_exec("CREATE DATABASE " + quote_identifier(options.dbname));
  return options;
}

void drop_scratch_database(const PgOptions& options) {
  admin_exec("DROP DATABASE IF EXISTS " + quote_identifier(options.dbname) + " WITH (FORCE)");
}

void terminate_backend(int pid) {
  admin_exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
}

namespace {

int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

int select_int(pqxx::connection& connection, const std::string& sql) {
  pqxx::work tx(connection);
  return tx.exec1(sql)[0].as<int>();
}

class PgPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { options_ = create_scratch_database(""); }
  void TearDown() override {
    if (!options_.dbname.empty()) drop_scratch_database(options_);
  }

  PgOptions options_;
};

TEST(ConnectionStringTest, QuotesAndEscapesEveryValue) {
  PgOptions options;
  options.host = "db.internal";
  options.port = 6543;
  options.dbname = "my db";
  options.user = "o'brien";
  options.password = R"(p\w d')";
  options.connect_timeout_s = 3;
  options.statement_timeout_ms = 1234;
  options.application_name = "trellis test";
  EXPECT_EQ(connection_string(options),
            R"(host='db.internal' port='6543' dbname='my db' user='o\'brien' )"
            R"(password='p\\w d\'' connect_timeout='3' application_name='trellis test' )"
            R"(options='-c statement_timeout=1234')");
  EXPECT_EQ(describe(options), "o'brien@db.internal:6543/my db");
}

TEST(ConnectionStringTest, LeavesOutEmptyValues) {
  PgOptions options;
  options.host = "";
  options.application_name = "";
  EXPECT_EQ(connection_string(options),
            "port='5432' connect_timeout='5' options='-c statement_timeout=5000'");
}

TEST(PgPoolConstructionTest, RejectsNonsensicalOptions) {
  PgOptions options;
  options.pool_size = 0;
  EXPECT_THROW(PgPool(options, nullptr), std::invalid_argument);
  options.pool_size = 1;
  options.acquire_timeout_ms = -1;
  EXPECT_THROW(PgPool(options, nullptr), std::invalid_argument);
}

TEST(PgPoolScratchTest, ConnectsToAwkwardlyNamedDatabaseWithAwkwardSettings) {
  // Spaces, quotes and backslashes survive the conninfo quoting all the way to the server.
  auto options = create_scratch_database(R"( it's a \ "db")");
  options.application_name = R"(app 'x' \ y)";
  options.password = R"(unused ' \ secret)";  // trust auth ignores it, but it must still parse
  options.statement_timeout_ms = 1500;
  {
    PgPool pool(options, nullptr);
    auto lease = pool.acquire();
    pqxx::work tx(*lease);
    auto row = tx.exec1(
        "SELECT current_database(), current_setting('application_name'), "
        "current_setting('statement_timeout')");
    EXPECT_EQ(row[0].as<std::string>(), options.dbname);
    EXPECT_EQ(row[1].as<std::string>(), options.application_name);
    EXPECT_EQ(row[2].as<std::string>(), "1500ms");
  }
  drop_scratch_database(options);
}

TEST_F(PgPoolTest, OpensConnectionsLazily) {
  PgPool pool(options_, nullptr);
  EXPECT_EQ(pool.stats().open, 0);
  {
    auto lease = pool.acquire();
    EXPECT_EQ(select_int(*lease, "SELECT 1"), 1);
    auto stats = pool.stats();
    EXPECT_EQ(stats.open, 1);
    EXPECT_EQ(stats.in_use, 1);
  }
  auto stats = pool.stats();
  EXPECT_EQ(stats.open, 1);
  EXPECT_EQ(stats.in_use, 0);
}

TEST_F(PgPoolTest, ReusesReturnedConnection) {
  PgPool pool(options_, nullptr);
  int first_pid = pool.acquire()->backendpid();
  EXPECT_EQ(pool.acquire()->backendpid(), first_pid);
  EXPECT_EQ(pool.stats().open, 1);
}

TEST_F(PgPoolTest, ThirdAcquireOfPoolOfTwoTimesOut) {
  options_.pool_size = 2;
  options_.acquire_timeout_ms = 300;
  PgPool pool(options_, nullptr);
  auto a = pool.acquire();
  auto b = pool.acquire();
  auto started = Clock::now();
  EXPECT_THROW(pool.acquire(), PoolTimeout);
  auto waited = elapsed_ms(started);
  EXPECT_GE(waited, 290);
  EXPECT_LT(waited, 1000);
  auto stats = pool.stats();
  EXPECT_EQ(stats.open, 2);
  EXPECT_EQ(stats.in_use, 2);
  EXPECT_EQ(stats.waiting, 0);
}

TEST_F(PgPoolTest, WaitingAcquireGetsConnectionReturnedMeanwhile) {
  options_.pool_size = 2;
  options_.acquire_timeout_ms = 3000;
  PgPool pool(options_, nullptr);
  auto a = pool.acquire();
  auto b = pool.acquire();
  int b_pid = b->backendpid();
  std::thread returner([&] {
    // Return only once the main thread is seen waiting (or after 2 s, so the test cannot hang).
    for (int i = 0; i < 400 && pool.stats().waiting == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto returned = std::move(b);  // returned to the pool at the end of this scope
  });
  auto started = Clock::now();
  std::optional<PgPool::Lease> c;
  EXPECT_NO_THROW(c.emplace(pool.acquire()));
  auto waited = elapsed_ms(started);
  returner.join();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ((*c)->backendpid(), b_pid);
  EXPECT_GE(waited, 90);
  EXPECT_LT(waited, 2000);
  EXPECT_EQ(pool.stats().open, 2);
  EXPECT_EQ(pool.stats().in_use, 2);
}

TEST_F(PgPoolTest, StatementTimeoutCancelsLongQuery) {
  options_.statement_timeout_ms = 200;
  PgPool pool(options_, nullptr);
  auto lease = pool.acquire();
  auto started = Clock::now();
  try {
    pqxx::work tx(*lease);
    tx.exec("SELECT pg_sleep(2)");
    FAIL() << "pg_sleep(2) was not cancelled";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "57014");  // query_canceled
  }
  EXPECT_LT(elapsed_ms(started), 1000);
  // A cancelled statement leaves the connection usable.
  EXPECT_EQ(select_int(*lease, "SELECT 7"), 7);
}

TEST_F(PgPoolTest, PreparedStatementsExistOnEveryConnection) {
  options_.pool_size = 3;
  std::atomic<int> prepared{0};
  PgPool pool(options_, [&](pqxx::connection& connection) {
    connection.prepare("add_one", "SELECT $1::int + 1");
    ++prepared;
  });
  std::vector<PgPool::Lease> leases;
  for (int i = 0; i < 3; ++i) leases.push_back(pool.acquire());
  for (auto& lease : leases) {
    pqxx::work tx(*lease);
    EXPECT_EQ(tx.exec_prepared1("add_one", 41)[0].as<int>(), 42);
  }
  EXPECT_EQ(prepared.load(), 3);
}

TEST_F(PgPoolTest, FailingPreparerFreesTheSlot) {
  options_.pool_size = 1;
  bool fail = true;
  PgPool pool(options_, [&](pqxx::connection&) {
    if (fail) throw std::runtime_error("preparer failed");
  });
  EXPECT_THROW(pool.acquire(), std::runtime_error);
  EXPECT_EQ(pool.stats().open, 0);
  EXPECT_EQ(pool.stats().in_use, 0);
  fail = false;
  EXPECT_EQ(select_int(*pool.acquire(), "SELECT 1"), 1);
}

TEST_F(PgPoolTest, ConnectionKilledByServerIsDiscarded) {
  options_.pool_size = 1;
  PgPool pool(options_, [](pqxx::connection& c) { c.prepare("two", "SELECT 2"); });
  int killed_pid = 0;
  {
    auto lease = pool.acquire();
    killed_pid = lease->backendpid();
    terminate_backend(killed_pid);
    EXPECT_THROW(select_int(*lease, "SELECT 1"), pqxx::broken_connection);
  }
  EXPECT_EQ(pool.stats().open, 0);
  auto lease = pool.acquire();
  EXPECT_NE(lease->backendpid(), killed_pid);
  pqxx::work tx(*lease);
  EXPECT_EQ(tx.exec_prepared1("two")[0].as<int>(), 2);
}

TEST_F(PgPoolTest, DiscardClosesTheConnectionAtOnce) {
  options_.pool_size = 1;
  PgPool pool(options_, nullptr);
  auto lease = pool.acquire();
  int pid = lease->backendpid();
  lease.discard();
  EXPECT_FALSE(lease);
  EXPECT_THROW(*lease, std::logic_error);
  EXPECT_EQ(pool.stats().open, 0);
  EXPECT_NE(pool.acquire()->backendpid(), pid);
}

TEST_F(PgPoolTest, WithTransactionCommitsAndReturnsResult) {
  PgPool pool(options_, nullptr);
  with_transaction(pool, [](pqxx::work& tx) { tx.exec0("CREATE TABLE t (v int)"); });
  int inserted = with_transaction(pool, [](pqxx::work& tx) {
    return tx.exec1("INSERT INTO t VALUES (5) RETURNING v")[0].as<int>();
  });
  EXPECT_EQ(inserted, 5);
  EXPECT_EQ(with_transaction(
                pool, [](pqxx::work& tx) { return tx.exec1("SELECT sum(v) FROM t")[0].as<int>(); }),
            5);
}

TEST_F(PgPoolTest, WithTransactionRollsBackWhenWorkThrows) {
  PgPool pool(options_, nullptr);
  with_transaction(pool, [](pqxx::work& tx) { tx.exec0("CREATE TABLE t (v int)"); });
  EXPECT_THROW(with_transaction(pool,
                                [](pqxx::work& tx) {
                                  tx.exec0("INSERT INTO t VALUES (1)");
                                  throw std::runtime_error("business rule");
                                }),
               std::runtime_error);
  EXPECT_EQ(
      with_transaction(
          pool, [](pqxx::work& tx) { return tx.exec1("SELECT count(*) FROM t")[0].as<int>(); }),
      0);
  EXPECT_EQ(pool.stats().in_use, 0);
}

TEST_F(PgPoolTest, WithTransactionReconnectsWhenIdleConnectionWasKilled) {
  options_.pool_size = 2;
  PgPool pool(options_, nullptr);
  int idle_pid = pool.acquire()->backendpid();
  terminate_backend(idle_pid);
  int attempts = 0;
  int pid = with_transaction(pool, [&](pqxx::work& tx) {
    ++attempts;
    return tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  });
  EXPECT_NE(pid, idle_pid);
  EXPECT_LE(attempts, 1);  // BEGIN fails on the dead connection, before work runs
  EXPECT_EQ(pool.stats().open, 1);
}

TEST_F(PgPoolTest, WithTransactionRetriesBrokenConnectionOnlyOnce) {
  PgPool pool(options_, nullptr);
  int attempts = 0;
  EXPECT_THROW(with_transaction(pool,
                                [&](pqxx::work&) -> int {
                                  ++attempts;
                                  throw pqxx::broken_connection("simulated");
                                }),
               pqxx::broken_connection);
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(pool.stats().in_use, 0);
}

TEST_F(PgPoolTest, WithTransactionRetriesConflictsUpToThreeTimes) {
  PgPool pool(options_, nullptr);
  int attempts = 0;
  int result = with_transaction(pool, [&](pqxx::work&) {
    if (++attempts == 1) throw pqxx::deadlock_detected("simulated");
    if (attempts <= 3) throw pqxx::serialization_failure("simulated");
    return attempts;
  });
  EXPECT_EQ(result, 4);

  attempts = 0;
  EXPECT_THROW(with_transaction(pool,
                                [&](pqxx::work&) {
                                  ++attempts;
                                  throw pqxx::serialization_failure("simulated");
                                }),
               pqxx::serialization_failure);
  EXPECT_EQ(attempts, 4);
}

TEST_F(PgPoolTest, WithTransactionRetriesRealSerializationFailure) {
  PgPool pool(options_, nullptr);
  with_transaction(pool, [](pqxx::work& tx) {
    tx.exec0("CREATE TABLE counter (v int)");
    tx.exec0("INSERT INTO counter VALUES (0)");
  });
  // A concurrent update between our snapshot and our UPDATE makes REPEATABLE READ fail with
  // 40001 the first time; the retry sees the new value.
  auto other = pool.acquire();
  int attempts = 0;
  int final_value = with_transaction(pool, [&](pqxx::work& tx) {
    tx.exec0("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    tx.exec1("SELECT v FROM counter");  // takes the snapshot
    if (++attempts == 1) {
      pqxx::work concurrent(*other);
      concurrent.exec0("UPDATE counter SET v = v + 10");
      concurrent.commit();
    }
    return tx.exec1("UPDATE counter SET v = v + 1 RETURNING v")[0].as<int>();
  });
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(final_value, 11);
}

// A port on which nothing listens: bind one, then close it.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

TEST(PgPoolUnreachableTest, RefusedConnectionThrowsBrokenConnectionWithoutPassword) {
  PgOptions options;
  options.host = "127.0.0.1";
  options.port = closed_port();
  options.dbname = "nowhere";
  options.user = "nobody";
  options.password = "password-must-not-leak";
  PgPool pool(options, nullptr);
  auto started = Clock::now();
  try {
    pool.acquire();
    FAIL() << "acquire() succeeded without a server";
  } catch (const pqxx::broken_connection& e) {
    EXPECT_EQ(std::string(e.what()).find("password-must-not-leak"), std::string::npos) << e.what();
  }
  EXPECT_LT(elapsed_ms(started), 1000);
  EXPECT_EQ(pool.stats().open, 0);
  EXPECT_EQ(pool.stats().in_use, 0);
}

TEST(PgPoolUnreachableTest, SilentServerFailsAfterConnectTimeout) {
  // Accepts TCP connections (the kernel completes the handshake) but never answers.
  trellis::testing::LoopbackListener listener;

  PgOptions options;
  options.host = "127.0.0.1";
  options.port = listener.port();
  options.dbname = "silent";
  options.user = "nobody";
  options.connect_timeout_s = 2;  // libpq's minimum
  PgPool pool(options, nullptr);
  auto started = Clock::now();
  EXPECT_THROW(pool.acquire(), pqxx::broken_connection);
  auto waited = elapsed_ms(started);
  EXPECT_GE(waited, 1500);
  EXPECT_LT(waited, 4500);
  EXPECT_EQ(pool.stats().open, 0);
}

}  // namespace
}  // namespace trellis::db::test
