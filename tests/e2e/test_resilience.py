"""How the gateway behaves when what it depends on is slow or gone: it answers quickly with the
right status, never hangs, and recovers without a restart."""

import time
import unittest
import uuid

from harness import Stack
from replicas import wait_for

PASSWORD = "correct horse battery"


class DependencyLossTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(own_redis=True).start()
        cls.addClassCleanup(cls.stack.stop)

    def signup(self):
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": email, "password": PASSWORD, "display_name": "R"})
        self.assertEqual(r.status, 201, r.body)
        return r.json

    def test_users_down_makes_readyz_503_and_calls_503_then_recovers(self):
        token = self.signup()["access_token"]
        self.stack.stop_component("users")
        try:
            self.assertTrue(wait_for(lambda: self.stack.http("GET", "/readyz").status == 503),
                            "readyz stayed green with the users service down")
            r = self.stack.http("GET", "/readyz")
            self.assertFalse(r.json["checks"]["upstream:users"]["ok"])
            started = time.monotonic()
            r = self.stack.http("GET", "/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json["code"], "unavailable")
            self.assertLess(time.monotonic() - started, 6.0)
            self.assertEqual(self.stack.http("GET", "/healthz").status, 200)  # alive, not ready
        finally:
            self.stack.start_component("users")
        self.assertTrue(wait_for(lambda: self.stack.http("GET", "/readyz").status == 200, 20),
                        "readyz did not recover after users came back")
        r = self.stack.http("GET", "/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(r.status, 200, r.body)

    def test_redis_down_fails_closed_then_recovers(self):
        token = self.signup()["access_token"]
        self.stack.redis.stop()
        try:
            # Redis was there at start: losing it degrades the gateway but keeps it in rotation
            # (a load balancer pulling every replica would make the outage total).
            self.assertTrue(wait_for(lambda: self.stack.http("GET", "/readyz").json["checks"]
                                     ["redis"].get("degraded") is True))
            self.assertEqual(self.stack.http("GET", "/readyz").status, 200)
            started = time.monotonic()
            r = self.stack.http("GET", "/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            # Revocation cannot be checked: refuse rather than let a revoked token through.
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json["code"], "auth_unavailable")
            self.assertLess(time.monotonic() - started, 2.0)
            # Public routes that need no Redis keep working.
            r = self.stack.http("GET", "/.well-known/jwks.json")
            self.assertEqual(r.status, 200)
        finally:
            self.stack.redis.start()
        self.assertTrue(wait_for(lambda: self.stack.http("GET", "/readyz").json["checks"]
                                 ["redis"]["detail"] == "ok", 20),
                        "readyz did not recover after Redis came back")
        r = self.stack.http("GET", "/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(r.status, 200, r.body)


class DeadlineTest(unittest.TestCase):
    """The route timeout is the gRPC deadline: an upstream slower than it gives 504."""

    @classmethod
    def setUpClass(cls):
        # Argon2id at 64 MiB/t=3 takes far longer than 5 ms: login always misses the deadline.
        cls.stack = Stack(users_overrides={"passwords": {"ops_limit": 3, "mem_limit_kib": 65536}},
                          gateway_overrides={"default_timeout_ms": 5}).start()
        cls.addClassCleanup(cls.stack.stop)

    def test_slow_upstream_gives_504(self):
        started = time.monotonic()
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": "slow@example.com", "password": PASSWORD, "display_name": "S"})
        self.assertEqual(r.status, 504, r.body)
        self.assertEqual(r.json["code"], "deadline_exceeded")
        self.assertLess(time.monotonic() - started, 2.0)


if __name__ == "__main__":
    unittest.main()
