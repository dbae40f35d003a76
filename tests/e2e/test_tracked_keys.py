"""The gateway's local copies of revocation markers and cache generations (Redis key tracking):
hits skip Redis, yet a change written to Redis by anyone is honoured on the next request, and a
Redis that stops answering (paused, connection still open) stops the copies being used within
three heartbeats."""

import base64
import json
import os
import signal
import time
import unittest
import uuid

from harness import Stack, local, metric_value
from replicas import wait_for

CACHE = {"routes": [{"route": "/v1/users/me", "ttl_s": 60, "per_user": True,
                     "invalidated_by": ["PATCH /v1/users/me"]}]}
HEARTBEAT_MS = 100


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class TrackedKeysTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin_port = local.free_port()
        cls.stack = Stack(own_redis=True, gateway_overrides={
            "cache": CACHE, "admin": {"address": "127.0.0.1", "port": cls.admin_port},
            "redis": {"tracking_heartbeat_ms": HEARTBEAT_MS}}).start()
        cls.addClassCleanup(cls.stack.stop)
        assert wait_for(lambda: cls.metric('gateway_redis_tracking_current') == 1)

    @classmethod
    def metric(cls, name):
        return metric_value(cls.admin_port, name) or 0

    def user(self):
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": f"{uuid.uuid4().hex[:10]}@example.com",
                             "password": "correct horse", "display_name": "T"})
        self.assertEqual(r.status, 201, r.body)
        return r.json["access_token"], {"Authorization": f"Bearer {r.json['access_token']}"}

    def me(self, auth):
        return self.stack.http("GET", "/v1/users/me", headers=auth)

    def warm(self, auth):
        hits = self.metric('gateway_redis_tracked_lookups_total{result="hit"}')
        for _ in range(3):
            self.assertEqual(self.me(auth).status, 200)
        r = self.me(auth)
        self.assertEqual((r.status, r.headers["x-cache"]), (200, "HIT"))
        # Answered from the copies: the revocation check and the generation both hit.
        self.assertGreaterEqual(
            self.metric('gateway_redis_tracked_lookups_total{result="hit"}') - hits, 2)

    def test_a_revocation_written_to_redis_by_anyone_is_honoured_on_the_next_request(self):
        for marker in ("jti", "sid"):
            token, auth = self.user()
            self.warm(auth)
            key = f"trellis:revoked:{marker}:" + claims(token)[marker]
            self.stack.redis_cli("SET", key, "1", "EX", "60")  # as another users replica would
            r = self.me(auth)
            self.assertEqual((r.status, r.json["code"]), (401, "token_revoked"), marker)

    def test_a_generation_bumped_by_anyone_is_seen_on_the_next_request(self):
        token, auth = self.user()
        self.warm(auth)
        self.stack.redis_cli("INCR", "trellis:cache:gen:/v1/users/me:" + claims(token)["sub"])
        r = self.me(auth)
        self.assertEqual((r.status, r.headers["x-cache"]), (200, "MISS"))

    def test_a_paused_redis_stops_the_copies_within_three_heartbeats(self):
        _, auth = self.user()
        self.warm(auth)
        pid = self.stack.redis.running_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            paused = time.monotonic()
            # Copies go unused 3 heartbeats after the last one came back; then the check reads
            # Redis, times out, and fails closed.
            while True:
                r = self.me(auth)
                if r.status != 200:
                    break
                self.assertLess(time.monotonic() - paused, 2.0, "copies still used")
            self.assertEqual((r.status, r.json["code"]), (503, "auth_unavailable"))
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self.me(auth).status == 200))
        self.assertTrue(wait_for(lambda: self.metric("gateway_redis_tracking_current") == 1))
        self.assertEqual(self.me(auth).headers["x-cache"], "HIT")


if __name__ == "__main__":
    unittest.main()
