"""One client request becomes one trace across processes: the gateway's server span, its client
span for the gRPC call, the users service's server span and its database and Redis spans, all
exported as OTLP/HTTP JSON to a collector (here a small one in the test)."""

import http.server
import json
import threading
import time
import unittest
import uuid

from harness import Stack, local

TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4799"


class Collector(http.server.ThreadingHTTPServer):
    def __init__(self):
        self.spans = []
        self.lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                document = json.loads(body)
                with collector.lock:
                    for resource in document["resourceSpans"]:
                        service = resource["resource"]["attributes"][0]["value"]["stringValue"]
                        for scope in resource["scopeSpans"]:
                            for span in scope["spans"]:
                                collector.spans.append(dict(span, service=service))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def trace(self, trace_id):
        with self.lock:
            return [span for span in self.spans if span["traceId"] == trace_id]


class TracingTest(unittest.TestCase):
    def test_one_request_is_one_trace_across_processes(self):
        collector = Collector()
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
        try:
            with Stack(users_overrides={"tracing": {"otlp_endpoint": endpoint}},
                       gateway_overrides={"tracing": {"otlp_endpoint": endpoint}}) as stack:
                email = f"{uuid.uuid4().hex[:10]}@example.com"
                r = stack.http("POST", "/v1/auth/signup",
                               {"email": email, "password": "correct horse", "display_name": "T"},
                               headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
                self.assertEqual(r.status, 201)
                token = r.json["access_token"]
                r = stack.http("POST", "/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
                self.assertEqual(r.status, 204)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and len(collector.trace(TRACE_ID)) < 4:
                    time.sleep(0.2)
                spans = collector.trace(TRACE_ID)
        finally:
            collector.shutdown()

        by_name = {(span["service"], span["name"]): span for span in spans}
        server = by_name[("gateway", "POST /v1/auth/signup")]
        client = by_name[("gateway", "/trellis.users.v1.AuthService/Signup")]
        rpc = by_name[("users", "AuthService.Signup")]
        db = [s for s in spans if s["service"] == "users" and s["name"] == "db.transaction"]
        self.assertEqual(server["parentSpanId"], "00f067aa0ba902b7")  # the client's span
        self.assertEqual(server["kind"], 2)
        self.assertEqual(client["parentSpanId"], server["spanId"])
        self.assertEqual(client["kind"], 3)
        self.assertEqual(rpc["parentSpanId"], client["spanId"])
        self.assertTrue(db, "no database span")
        for span in db:
            self.assertEqual(span["parentSpanId"], rpc["spanId"])
        attributes = {a["key"]: a["value"]["stringValue"] for a in server["attributes"]}
        self.assertEqual(attributes["http.status_code"], "201")
        self.assertEqual(attributes["http.route"], "/v1/auth/signup")


if __name__ == "__main__":
    unittest.main()
