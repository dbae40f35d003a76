"""Prometheus metrics on the gateway's admin port (never on the public one) and on the users
service's metrics port, after real traffic."""

import http.client
import re
import unittest
import uuid

from harness import Stack, local


def scrape(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, response.getheader("Content-Type"), body


def value(text, series):
    match = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin_port = local.free_port()
        cls.users_metrics_port = local.free_port()
        cls.stack = Stack(
            users_overrides={"metrics": {"listen": f"127.0.0.1:{cls.users_metrics_port}"}},
            gateway_overrides={"admin": {"address": "127.0.0.1", "port": cls.admin_port}},
        ).start()
        cls.addClassCleanup(cls.stack.stop)

    def test_requests_are_counted_by_route_template_and_status(self):
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": email, "password": "correct horse", "display_name": "M"})
        self.assertEqual(r.status, 201)
        for _ in range(3):
            self.assertEqual(self.stack.http("GET", f"/v1/users/{uuid.uuid4()}").status, 401)
        status, content_type, text = scrape(self.admin_port)
        self.assertEqual(status, 200)
        self.assertIn("version=0.0.4", content_type)
        self.assertEqual(value(text, 'http_requests_total{route="/v1/auth/signup",method="POST",'
                                     'status="201"}'), 1)
        self.assertEqual(value(text, 'http_requests_total{route="/v1/users/{id}",method="GET",'
                                     'status="401"}'), 3)
        self.assertEqual(value(text, 'gateway_auth_decisions_total{outcome="missing_token"}'), 3)
        self.assertGreaterEqual(value(text, 'grpc_client_handling_seconds_count{upstream="users",'
                                            'method="/trellis.users.v1.AuthService/Signup",'
                                            'code="0"}'), 1)
        self.assertIn("http_request_duration_seconds_bucket", text)
        # Redis as seen by the gateway (token revocation checks, readiness probes).
        self.assertGreater(value(text, 'redis_command_duration_seconds_count{client="shared"}'), 0)

        status, _, users_text = scrape(self.users_metrics_port)
        self.assertEqual(status, 200)
        self.assertEqual(value(users_text, 'grpc_server_handled_total{method='
                                           '"/trellis.users.v1.AuthService/Signup",code="OK"}'), 1)
        self.assertEqual(value(users_text, 'users_signups_total{outcome="ok"}'), 1)
        self.assertIsNotNone(value(users_text, 'db_pool_connections{state="open"}'))
        self.assertGreaterEqual(value(users_text, 'db_transaction_seconds_count{pool="users"}'), 2)
        self.assertGreaterEqual(value(users_text, 'db_pool_acquire_seconds_count{pool="users"}'), 2)

    def test_metrics_are_not_on_the_public_port(self):
        r = self.stack.http("GET", "/metrics")
        self.assertEqual(r.status, 404)


if __name__ == "__main__":
    unittest.main()
