"""Every error case of the public API: status, JSON body {code, message, request_id}, headers."""

import json
import re
import socket
import unittest

from harness import Stack
from replicas import wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class HttpErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()
        cls.addClassCleanup(cls.stack.stop)

    def assertError(self, response, status, code):
        self.assertEqual(response.status, status, response.body)
        self.assertEqual(response.headers.get("content-type"), "application/json")
        self.assertEqual(set(response.json), {"code", "message", "request_id"})
        self.assertEqual(response.json["code"], code)
        self.assertTrue(response.json["message"])
        self.assertEqual(response.json["request_id"], response.headers["x-request-id"])

    def test_unknown_path_is_404(self):
        self.assertError(self.stack.http("GET", "/v1/nothing"), 404, "not_found")
        self.assertError(self.stack.http("GET", "/v1/users/me/"), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self):
        r = self.stack.http("DELETE", "/v1/users/me")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.headers["allow"], "GET, PATCH")
        r = self.stack.http("GET", "/v1/auth/signup")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.headers["allow"], "POST")
        r = self.stack.http("POST", "/healthz")
        self.assertError(r, 405, "method_not_allowed")

    def test_malformed_json_is_400(self):
        for raw in ('{"email": ', "[1]", '{"email": 5}', '{"unknown_field": 1}', "nul"):
            r = self.stack.http("POST", "/v1/auth/signup", raw_body=raw,
                                headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, raw)
            self.assertIn(r.json["code"], ("malformed_json",), raw)
        r = self.stack.http("POST", "/v1/auth/signup", raw_body='{"emial": "x"}',
                            headers={"Content-Type": "application/json"})
        self.assertIn("emial", r.json["message"])

    def test_wrong_content_type_is_415(self):
        r = self.stack.http("POST", "/v1/auth/login", raw_body="email=a&password=b",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertError(r, 415, "unsupported_media_type")
        r = self.stack.http("POST", "/v1/auth/login", raw_body='{"email": "a"}')
        self.assertError(r, 415, "unsupported_media_type")
        r = self.stack.http("POST", "/v1/auth/login", raw_body='{"email":"a@b.co","password":"x"}',
                            headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 401)  # accepted as JSON, then the credentials are wrong

    def test_body_over_1_mib_is_413(self):
        body = '{"email": "' + "a" * (1024 * 1024) + '"}'
        r = self.stack.http("POST", "/v1/auth/signup", raw_body=body,
                            headers={"Content-Type": "application/json"})
        self.assertError(r, 413, "payload_too_large")
        # the gateway is still fine afterwards
        self.assertEqual(self.stack.http("GET", "/healthz").status, 200)

    def test_request_id_is_kept_when_well_formed_and_replaced_otherwise(self):
        r = self.stack.http("GET", "/v1/nothing", headers={"X-Request-Id": "client-id-123"})
        self.assertEqual(r.headers["x-request-id"], "client-id-123")
        self.assertEqual(r.json["request_id"], "client-id-123")
        r = self.stack.http("GET", "/v1/nothing", headers={"X-Request-Id": "bad id with spaces"})
        self.assertNotEqual(r.headers["x-request-id"], "bad id with spaces")
        self.assertRegex(r.headers["x-request-id"], r"^[0-9a-f]{32}$")

    def test_traceparent_is_continued_or_started(self):
        incoming = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
        r = self.stack.http("GET", "/healthz", headers={"traceparent": incoming})
        self.assertRegex(r.headers["traceparent"], rf"^00-{TRACE_ID}-[0-9a-f]{{16}}-01$")
        self.assertNotIn("00f067aa0ba902b7", r.headers["traceparent"])
        r = self.stack.http("GET", "/healthz", headers={"traceparent": "garbage"})
        self.assertRegex(r.headers["traceparent"], r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
        self.assertNotIn(TRACE_ID, r.headers["traceparent"])

    def test_request_id_and_trace_reach_the_service_logs(self):
        incoming = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
        r = self.stack.http("POST", "/v1/auth/login", {"email": "x@example.com", "password": "y" * 8},
                            headers={"X-Request-Id": "trace-me-42", "traceparent": incoming})
        self.assertEqual(r.status, 401)

        def lines_of(log_text):
            return [json.loads(line) for line in log_text().splitlines() if "trace-me-42" in line]

        # Log lines are written in batches, within 20 ms of being logged.
        self.assertTrue(wait_for(lambda: lines_of(self.stack.users_log_text), timeout=5),
                        "the users service logged nothing for the request id")
        for line in lines_of(self.stack.users_log_text):
            self.assertEqual(line["trace_id"], TRACE_ID)
        wait_for(lambda: any(line["msg"] == "access"
                             for line in lines_of(self.stack.gateway_log_text)), timeout=5)
        gateway_lines = lines_of(self.stack.gateway_log_text)
        self.assertTrue(any(line["msg"] == "access" and line["status"] == 401
                            and line["route"] == "/v1/auth/login" for line in gateway_lines))
        for line in gateway_lines:
            self.assertEqual(line["trace_id"], TRACE_ID)

    def test_health_and_readiness(self):
        r = self.stack.http("GET", "/healthz")
        self.assertEqual(r.status, 200)
        r = self.stack.http("GET", "/readyz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["status"], "ready")
        self.assertTrue(all(check["ok"] for check in r.json["checks"].values()))
        self.assertIn("redis", r.json["checks"])
        self.assertIn("upstream:users", r.json["checks"])

    def test_openapi_document_lists_every_route(self):
        r = self.stack.http("GET", "/openapi.json")
        self.assertEqual(r.status, 200)
        doc = r.json
        self.assertEqual(doc["openapi"], "3.1.0")
        paths = doc["paths"]
        self.assertIn("post", paths["/v1/auth/signup"])
        self.assertIn("201", paths["/v1/auth/signup"]["post"]["responses"])
        self.assertIn("204", paths["/v1/auth/logout"]["post"]["responses"])
        self.assertEqual(set(paths["/v1/users/me"]), {"get", "patch"})
        self.assertIn("/v1/users/{id}", paths)
        self.assertIn("/.well-known/jwks.json", paths)

    def test_garbage_on_the_socket_gets_400_and_no_crash(self):
        with socket.create_connection(("127.0.0.1", self.stack.http_port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
            data = sock.recv(4096)
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:60])
        self.assertEqual(self.stack.http("GET", "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
