"""The gateway's two-level response cache through two real replicas sharing one Redis."""

import http.client
import re
import tempfile
import threading
import unittest
import uuid
from pathlib import Path

from harness import Stack, http_request, local
from replicas import Replica, wait_for

CACHE = {"routes": [{"route": "/v1/users/me", "ttl_s": 60, "per_user": True,
                     "invalidated_by": ["PATCH /v1/users/me"]}]}
GET_ME = 'grpc_server_handled_total{method="/trellis.users.v1.UserService/GetMe",code="OK"}'


class CacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.metrics_port = local.free_port()
        cls.stack = Stack(users_overrides={"metrics": {"listen": f"127.0.0.1:{cls.metrics_port}"}},
                          gateway_overrides={"cache": CACHE}).start()
        cls.addClassCleanup(cls.stack.stop)
        cls.second_port = local.free_port()
        cls.second = Replica(cls.stack, "gateway",
                             {"TRELLIS_GATEWAY__LISTEN__PORT": str(cls.second_port)},
                             Path(tempfile.mkdtemp(prefix="trellis-cache-")) / "gateway-2.log")
        cls.second.start()
        cls.addClassCleanup(cls.second.stop)
        assert wait_for(lambda: http_request("127.0.0.1", cls.second_port, "GET",
                                             "/readyz").status == 200)

    def get_me_calls(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        match = re.search("^" + re.escape(GET_ME) + r" (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def user(self, name):
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": f"{uuid.uuid4().hex[:10]}@example.com",
                             "password": "correct horse", "display_name": name})
        self.assertEqual(r.status, 201)
        return {"Authorization": f"Bearer {r.json['access_token']}"}

    def me(self, port, auth, extra=None):
        return http_request("127.0.0.1", port, "GET", "/v1/users/me",
                            headers=dict(auth, **(extra or {})))

    def test_hits_skip_the_service_and_both_replicas_share_l2(self):
        auth = self.user("Ann")
        before = self.get_me_calls()
        first = self.me(self.stack.http_port, auth)
        self.assertEqual((first.status, first.headers["x-cache"]), (200, "MISS"))
        self.assertEqual(first.headers["cache-control"], "private, max-age=60")
        self.assertEqual(first.headers["vary"], "Authorization")
        self.assertRegex(first.headers["etag"], r'^"[0-9a-f]{32}"$')
        again = self.me(self.stack.http_port, auth)
        other_replica = self.me(self.second_port, auth)
        for response in (again, other_replica):
            self.assertEqual((response.status, response.headers["x-cache"]), (200, "HIT"))
            self.assertEqual(response.body, first.body)
        self.assertEqual(self.get_me_calls() - before, 1)

    def test_a_revoked_token_never_gets_a_cached_answer(self):
        # The revocation check and the cache lookup run in parallel; the hit must still wait for
        # the check, on the replica that cached it and on the other one.
        auth = self.user("Rev")
        for port in (self.stack.http_port, self.second_port, self.stack.http_port):
            self.assertEqual(self.me(port, auth).status, 200)
        self.assertEqual(self.me(self.stack.http_port, auth).headers["x-cache"], "HIT")
        r = self.stack.http("POST", "/v1/auth/logout", headers=auth)
        self.assertEqual(r.status, 204, r.body)
        for port in (self.stack.http_port, self.second_port):
            r = self.me(port, auth)
            self.assertEqual((r.status, r.json["code"]), (401, "token_revoked"), r.body)
            self.assertNotIn("x-cache", r.headers)

    def test_a_revoked_token_on_a_miss_does_not_block_the_next_requests(self):
        # A revoked token's lookup misses: it must not become the key's leader, or every later
        # request for the key would wait for an answer that never comes.
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": email, "password": "correct horse", "display_name": "M"})
        revoked = {"Authorization": f"Bearer {r.json['access_token']}"}
        self.assertEqual(self.stack.http("POST", "/v1/auth/logout", headers=revoked).status, 204)
        for _ in range(3):
            r = self.me(self.stack.http_port, revoked)
            self.assertEqual((r.status, r.json["code"]), (401, "token_revoked"))
        r = self.stack.http("POST", "/v1/auth/login", {"email": email, "password": "correct horse"})
        fresh = {"Authorization": f"Bearer {r.json['access_token']}"}
        r = http_request("127.0.0.1", self.stack.http_port, "GET", "/v1/users/me", headers=fresh,
                         timeout=5)
        self.assertEqual((r.status, r.headers["x-cache"]), (200, "MISS"), r.body)

    def test_users_never_see_each_others_data(self):
        ann, bob = self.user("Ann"), self.user("Bob")
        self.assertEqual(self.me(self.stack.http_port, ann).json["display_name"], "Ann")
        self.assertEqual(self.me(self.stack.http_port, bob).json["display_name"], "Bob")
        self.assertEqual(self.me(self.second_port, bob).json["display_name"], "Bob")
        self.assertEqual(self.me(self.second_port, ann).json["display_name"], "Ann")

    def test_read_after_write_is_fresh_on_every_replica(self):
        auth = self.user("Old")
        for port in (self.stack.http_port, self.second_port):
            self.assertEqual(self.me(port, auth).json["display_name"], "Old")
            self.assertEqual(self.me(port, auth).headers["x-cache"], "HIT")
        r = http_request("127.0.0.1", self.second_port, "PATCH", "/v1/users/me",
                         {"display_name": "New"}, headers=auth)
        self.assertEqual(r.status, 200)
        for port in (self.stack.http_port, self.second_port):
            self.assertEqual(self.me(port, auth).json["display_name"], "New", port)

    def test_if_none_match_gives_304_also_on_a_miss(self):
        auth = self.user("Etag")
        etag = self.me(self.stack.http_port, auth).headers["etag"]
        r = self.me(self.stack.http_port, auth, {"If-None-Match": etag})
        self.assertEqual((r.status, r.body), (304, b""))
        self.assertEqual(r.headers["etag"], etag)
        # A fresh replica's first answer (a miss there) honours it as well.
        http_request("127.0.0.1", self.second_port, "PATCH", "/v1/users/me",
                     {"display_name": "Etag"}, headers=auth)  # same data, new generation
        r = self.me(self.second_port, auth, {"If-None-Match": etag})
        self.assertEqual((r.status, r.headers["x-cache"]), (304, "MISS"))
        r = http_request("127.0.0.1", self.second_port, "PATCH", "/v1/users/me",
                         {"display_name": "Changed"}, headers=auth)
        r = self.me(self.stack.http_port, auth, {"If-None-Match": etag})
        self.assertEqual(r.status, 200)
        self.assertNotEqual(r.headers["etag"], etag)

    def test_concurrent_misses_make_one_upstream_call(self):
        auth = self.user("Crowd")
        before = self.get_me_calls()
        results = []
        barrier = threading.Barrier(100)

        def fetch():
            barrier.wait()
            results.append(self.me(self.stack.http_port, auth))

        threads = [threading.Thread(target=fetch) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual([r.status for r in results], [200] * 100)
        self.assertEqual({r.json["display_name"] for r in results}, {"Crowd"})
        self.assertEqual(self.get_me_calls() - before, 1)


if __name__ == "__main__":
    unittest.main()
