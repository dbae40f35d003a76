"""Upstream resilience through a real gateway: replica loss, total loss (circuit breaker), recovery
without a gateway restart, and client-requested timeouts."""

import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

from harness import KeepAliveSession, Stack, http_request, local
from replicas import Replica, wait_for


class ReplicaLossTest(unittest.TestCase):
    def test_replica_loss_then_total_loss_then_recovery(self):
        work = Path(tempfile.mkdtemp(prefix="trellis-resilience-"))
        with Stack() as stack:
            users_b = local.free_port()
            second_users = Replica(stack, "users", {
                "TRELLIS_USERS__GRPC__LISTEN": f"127.0.0.1:{users_b}",
                "TRELLIS_USERS__MIGRATE_ON_START": "false"}, work / "users-b.log")
            gateway_port = local.free_port()
            gateway = Replica(stack, "gateway", {
                "TRELLIS_GATEWAY__LISTEN__PORT": str(gateway_port),
                "TRELLIS_GATEWAY__UPSTREAMS__USERS__TARGET":
                    f"ipv4:127.0.0.1:{stack.users_port},127.0.0.1:{users_b}",
                "TRELLIS_GATEWAY__UPSTREAMS__USERS__BREAKER_OPEN_MS": "1000"},
                work / "gateway.log")
            try:
                second_users.start()
                self.assertTrue(local.wait_for_listen(users_b, 15, lambda: True))
                gateway.start()
                self.assertTrue(wait_for(lambda: http_request(
                    "127.0.0.1", gateway_port, "GET", "/readyz").status == 200))
                r = http_request("127.0.0.1", gateway_port, "POST", "/v1/auth/signup",
                                 {"email": f"{uuid.uuid4().hex[:10]}@example.com",
                                  "password": "correct horse", "display_name": "R"})
                self.assertEqual(r.status, 201)
                bearer = {"Authorization": f"Bearer {r.json['access_token']}"}

                # 1. Kill one of two replicas (no graceful shutdown) under steady load.
                results, stop = [], threading.Event()

                def load():
                    session = KeepAliveSession("127.0.0.1", gateway_port)
                    while not stop.is_set():
                        status = session.request("GET", "/v1/users/me", headers=bearer).status
                        results.append((time.monotonic(), status))
                        time.sleep(0.002)
                    session.close()

                threads = [threading.Thread(target=load) for _ in range(4)]
                for thread in threads:
                    thread.start()
                time.sleep(1)
                killed_at = time.monotonic()
                second_users.process.kill()
                second_users.process.wait()
                time.sleep(3)
                stop.set()
                for thread in threads:
                    thread.join()
                late_failures = [s for t, s in results if s != 200 and t > killed_at + 1.0]
                self.assertGreater(len(results), 300)
                self.assertEqual(late_failures, [], "failures after the first second")

                # 2. All replicas down: fast 503s, the breaker opens.
                stack.stop_component("users")
                statuses, durations = [], []
                for _ in range(12):
                    started = time.monotonic()
                    r = http_request("127.0.0.1", gateway_port, "GET", "/v1/users/me",
                                     headers=bearer)
                    durations.append(time.monotonic() - started)
                    statuses.append((r.status, r.json["code"]))
                self.assertTrue(all(status == 503 for status, _ in statuses), statuses)
                self.assertIn((503, "circuit_open"), statuses)
                self.assertLess(max(durations), 1.5)
                self.assertIn("retry-after", r.headers)

                # 3. Back up: recovery without restarting the gateway.
                stack.start_component("users")
                self.assertTrue(wait_for(lambda: http_request(
                    "127.0.0.1", gateway_port, "GET", "/v1/users/me",
                    headers=bearer).status == 200, 20), "no recovery")
            finally:
                gateway.stop()
                second_users.stop()


class RequestTimeoutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()
        cls.addClassCleanup(cls.stack.stop)

    def test_client_may_ask_for_a_shorter_deadline(self):
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": "correct horse", "display_name": "T"}
        self.assertEqual(self.stack.http("POST", "/v1/auth/signup", body).status, 201)
        login = {"email": email, "password": "correct horse"}
        r = self.stack.http("POST", "/v1/auth/login", login, headers={"X-Request-Timeout": "1ms"})
        self.assertEqual(r.status, 504, r.body)
        self.assertEqual(r.json["code"], "deadline_exceeded")
        r = self.stack.http("POST", "/v1/auth/login", login, headers={"X-Request-Timeout": "5s"})
        self.assertEqual(r.status, 200)
        r = self.stack.http("POST", "/v1/auth/login", login, headers={"X-Request-Timeout": "soon"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["code"], "invalid_argument")


if __name__ == "__main__":
    unittest.main()
