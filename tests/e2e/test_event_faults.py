"""Exactly-once effect of the order → notification pipeline under faults: 1,000 orders are placed
while the outbox relay (trellis-orders), the consumer (trellis-notifications) and Redis itself are
killed with SIGKILL at random points and started again. Afterwards every order has exactly one
notification per event (placed, confirmed): none lost, none duplicated.

Redis runs with an append-only file here, as it must in production (docs/OPERATIONS.md): a Redis
that forgets its streams on restart loses whatever was published but not yet consumed. Clients
retry with the same Idempotency-Key, so an order whose answer was lost to a fault is not placed
twice."""

import os
import random
import signal
import threading
import time
import unittest
import uuid

from harness import Stack
from replicas import wait_for
from test_orders import ITEMS, signup

ORDERS = 1000
CLIENTS = 8
SEED = int(os.environ.get("TRELLIS_FAULT_SEED", "20261128"))


class EventPipelineFaultTest(unittest.TestCase):
    def setUp(self):
        self.stack = Stack(
            own_redis=True,
            persistent_redis=True,
            orders_overrides={
                "redis": {"timeout_ms": 200},
                "orders": {"auto_confirm_delay_ms": 100, "auto_confirm_interval_ms": 50,
                           "relay_interval_ms": 20, "relay_backoff_max_ms": 300},
            },
            notifications_overrides={
                "redis": {"timeout_ms": 200},
                "consumer": {"block_ms": 100, "claim_idle_ms": 1000, "claim_interval_ms": 300,
                             "backoff_max_ms": 300},
            },
        ).start()
        self.addCleanup(self.stack.stop)
        self.users = [signup(self.stack)[1] for _ in range(4)]
        self.random = random.Random(SEED)
        self.faults: list[str] = []

    def place(self, index):
        """Places one order, retrying through faults with one Idempotency-Key; its id."""
        headers = {**self.users[index % len(self.users)], "Idempotency-Key": f"fault-{index}"}
        deadline = time.monotonic() + 120
        last = None
        while time.monotonic() < deadline:
            try:
                r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"},
                                    headers=headers, timeout=5)
                if r.status == 201:
                    return r.json["id"]
                last = (r.status, r.body[:200])
                self.assertIn(r.status, (429, 502, 503, 504), r.body)
            except OSError as error:
                last = error  # the gateway itself never dies here, but a reset can happen
            time.sleep(0.05)
        raise AssertionError(f"order {index} could not be placed within 120 s: {last}; "
                             f"faults {self.faults}")

    def kill(self, name):
        process = self.stack.processes.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        time.sleep(self.random.uniform(0.1, 0.6))
        self.stack.start_component(name, die_with_parent=False)  # runs on the chaos thread

    def kill_redis(self):
        redis = self.stack.redis
        os.kill(redis.running_pid(), signal.SIGKILL)
        self.assertTrue(wait_for(lambda: redis.running_pid() is None, 10))
        time.sleep(self.random.uniform(0.1, 0.6))
        redis.start()  # same port, same append-only file

    def chaos(self, placed, stop):
        """Kills one of the three at random moments while orders are being placed."""
        victims = ["orders", "notifications", "redis"] * 2
        self.random.shuffle(victims)
        targets = sorted(self.random.sample(range(50, ORDERS - 50), len(victims)))
        for victim, target in zip(victims, targets):
            while len(placed) < target and not stop.is_set():
                time.sleep(0.01)
            if stop.is_set():
                return
            self.faults.append(f"{victim}@{len(placed)}")
            self.kill_redis() if victim == "redis" else self.kill(victim)

    def test_every_order_notifies_exactly_once_through_kills(self):
        placed: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()
        errors: list[BaseException] = []
        next_index = iter(range(ORDERS))

        def client():
            try:
                while True:
                    with lock:
                        index = next(next_index, None)
                    if index is None:
                        return
                    order_id = self.place(index)
                    with lock:
                        placed.append(order_id)
            except BaseException as error:  # surfaced below
                errors.append(error)

        chaos = threading.Thread(target=self.chaos, args=(placed, stop))
        chaos.start()
        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        started = time.monotonic()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(180)
        stop.set()
        chaos.join(60)
        self.assertEqual(errors, [])
        placement_s = time.monotonic() - started
        self.assertEqual(len(placed), ORDERS)
        self.assertEqual(len(set(placed)), ORDERS, "an Idempotency-Key retry made a second order")
        # Whatever died last must be running again.
        for name in ("orders", "notifications"):
            if self.stack.processes.get(name) is None or self.stack.processes[name].poll() is not None:
                self.stack.processes.pop(name, None)
                self.stack.start_component(name)

        expected = {(order_id, t) for order_id in placed
                    for t in ("order.created", "order.confirmed")}

        def stored():
            rows = self.stack.sql(
                "SELECT order_id, type, count(*) FROM notifications GROUP BY order_id, type",
                dbname=self.stack.notifications_db_name)
            return {(r[0], r[1]): int(r[2]) for r in rows}

        settled = wait_for(lambda: len(stored()) >= len(expected), 90, interval=0.5)
        counts = stored()
        missing = expected - set(counts)
        unexpected = set(counts) - expected
        duplicated = {k: v for k, v in counts.items() if v != 1}
        self.assertTrue(settled and not missing, f"{len(missing)} notifications lost; faults "
                        f"{self.faults}\n{self.stack.log_tails()}")
        self.assertEqual(unexpected, set())
        self.assertEqual(duplicated, {})
        total = self.stack.sql("SELECT count(*) FROM notifications",
                               dbname=self.stack.notifications_db_name)[0][0]
        self.assertEqual(int(total), 2 * ORDERS)
        # Nothing is left behind: every outbox row was published, nothing is pending.
        unpublished = self.stack.sql("SELECT count(*) FROM outbox WHERE published_at IS NULL",
                                     dbname=self.stack.orders_db_name)[0][0]
        self.assertEqual(unpublished, "0")
        self.assertTrue(wait_for(lambda: self.stack.redis_cli(
            "XPENDING", self.stack.orders_stream, "notifications").splitlines()[0] == "0", 30))
        print(f"\n{ORDERS} orders in {placement_s:.1f} s with faults {self.faults}; "
              f"{int(total)} notifications, each exactly once")


if __name__ == "__main__":
    unittest.main()
