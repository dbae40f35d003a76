"""Distributed rate limiting through two real gateway replicas sharing one Redis."""

import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

from harness import KeepAliveSession, Stack, http_request, local
from replicas import Replica, wait_for

LIMIT, WINDOW, BURST = 30, 3, 10
POLICIES = {"replicas": 2, "policies": [
    {"name": "jwks-ip", "key": "ip", "limit": LIMIT, "window_s": WINDOW, "burst": BURST,
     "routes": ["/.well-known/*"]},
    {"name": "me-user", "key": "user", "limit": 5, "window_s": 60, "burst": 5,
     "routes": ["/v1/users/me"]},
    {"name": "stream-ip", "key": "ip", "limit": 4, "window_s": 60, "burst": 4,
     "routes": ["/v1/notifications/stream"]},
]}


class RateLimitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gateway_overrides={"rate_limits": POLICIES}, own_redis=True).start()
        cls.addClassCleanup(cls.stack.stop)
        work = Path(tempfile.mkdtemp(prefix="trellis-ratelimit-"))
        cls.second_port = local.free_port()
        cls.second = Replica(cls.stack, "gateway",
                             {"TRELLIS_GATEWAY__LISTEN__PORT": str(cls.second_port)},
                             work / "gateway-2.log")
        cls.second.start()
        cls.addClassCleanup(cls.second.stop)
        assert wait_for(lambda: http_request("127.0.0.1", cls.second_port, "GET",
                                             "/readyz").status == 200)
        cls.ports = [cls.stack.http_port, cls.second_port]

    def hammer(self, path, seconds, threads=8, headers=None):
        """Requests as fast as possible from many connections to both replicas."""
        results = []
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def worker(port):
            session = KeepAliveSession("127.0.0.1", port)
            while time.monotonic() < stop:
                response = session.request("GET", path, headers=headers)
                with lock:
                    results.append((time.monotonic(), response))
            session.close()

        workers = [threading.Thread(target=worker, args=(self.ports[i % 2],))
                   for i in range(threads)]
        for worker_thread in workers:
            worker_thread.start()
        for worker_thread in workers:
            worker_thread.join()
        return results

    def test_1_at_most_limit_per_window_across_replicas(self):
        results = self.hammer("/.well-known/jwks.json", WINDOW * 2)
        statuses = [response.status for _, response in results]
        self.assertTrue(set(statuses) <= {200, 429}, set(statuses))
        admitted = [t for t, response in results if response.status == 200]
        self.assertGreater(len(results), 5 * LIMIT, "not driven hard enough to prove anything")
        # Within the first window (minus a margin for client-side timing) never more than LIMIT;
        # over two windows at most LIMIT plus one window's sustained rate.
        first = admitted[0]
        in_first_window = [t for t in admitted if t < first + WINDOW - 0.2]
        self.assertLessEqual(len(in_first_window), LIMIT)
        self.assertLessEqual(len(admitted), LIMIT + (LIMIT - BURST + 1) + 1)
        self.assertGreaterEqual(len(admitted), LIMIT - 1)

        allowed = next(response for _, response in results if response.status == 200)
        self.assertEqual(allowed.headers["ratelimit-policy"], f'"jwks-ip";q={LIMIT};w={WINDOW}')
        self.assertRegex(allowed.headers["ratelimit"], r'^"jwks-ip";r=\d+;t=\d+$')
        refused = next(response for _, response in results if response.status == 429)
        self.assertEqual(refused.json["code"], "rate_limited")
        self.assertGreaterEqual(int(refused.headers["retry-after"]), 1)
        self.assertRegex(refused.headers["ratelimit"], r'^"jwks-ip";r=0;t=\d+$')

    def test_2_a_throttled_user_does_not_affect_another(self):
        tokens = []
        for _ in range(2):
            email = f"{uuid.uuid4().hex[:10]}@example.com"
            r = self.stack.http("POST", "/v1/auth/signup",
                                {"email": email, "password": "correct horse", "display_name": "L"})
            self.assertEqual(r.status, 201)
            tokens.append({"Authorization": f"Bearer {r.json['access_token']}"})
        first = [self.stack.http("GET", "/v1/users/me", headers=tokens[0]).status
                 for _ in range(8)]
        self.assertEqual(first[:5], [200] * 5)
        self.assertEqual(first[5:], [429] * 3)
        self.assertEqual(self.stack.http("GET", "/v1/users/me", headers=tokens[1]).status, 200)
        # Another path of the same user is not covered by the policy.
        self.assertEqual(self.stack.http("GET", "/openapi.json", headers=tokens[0]).status, 200)

    def test_2_the_live_push_handshake_is_limited_per_client_ip(self):
        # Attempts to open a stream count before authentication, so an address cannot hold
        # unauthenticated WebSockets (each may wait auth_timeout_ms) without limit.
        statuses = [self.stack.http("GET", "/v1/notifications/stream",
                                    headers={"Accept": "text/event-stream"}).status
                    for _ in range(6)]
        self.assertEqual(statuses[:4], [401] * 4)
        self.assertEqual(statuses[4:], [429] * 2)
        r = self.stack.http("GET", "/v1/notifications/stream",
                            headers={"Accept": "text/event-stream"})
        self.assertEqual(r.json["code"], "rate_limited")
        self.assertIn("retry-after", r.headers)
        # POST is not a method of the stream: 405 from the route table, not the push filter.
        self.assertEqual(self.stack.http("POST", "/v1/notifications/stream", {}).status, 405)

    def test_3_redis_down_falls_back_locally_without_5xx_and_recovers(self):
        time.sleep(WINDOW)  # let earlier tests' quota refill
        stop = threading.Event()
        results = []

        def load():
            session = KeepAliveSession("127.0.0.1", self.stack.http_port)
            while not stop.is_set():
                results.append(session.request("GET", "/.well-known/jwks.json").status)
                time.sleep(0.01)
            session.close()

        thread = threading.Thread(target=load)
        thread.start()
        try:
            time.sleep(0.5)
            self.stack.redis.stop()
            self.assertTrue(wait_for(lambda: "local fallback" in http_request(
                "127.0.0.1", self.stack.http_port, "GET", "/readyz").body.decode()))
            time.sleep(1)
            self.stack.redis.start()
            self.assertTrue(wait_for(lambda: '"shared (redis)"' in http_request(
                "127.0.0.1", self.stack.http_port, "GET", "/readyz").body.decode()))
            time.sleep(0.5)
        finally:
            stop.set()
            thread.join()
        self.assertTrue(results)
        self.assertEqual([s for s in results if s >= 500], [])
        self.assertIn(200, results)
        log = self.stack.gateway_log_text()
        self.assertIn("redis unreachable: rate limiting locally", log)
        self.assertIn("rate limiting shared through redis again", log)


if __name__ == "__main__":
    unittest.main()
