"""A real Prometheus (deploy/local/prometheus.py) scraping a real stack: every target comes up,
traffic shows in queries, the rules in deploy/prometheus/rules load and evaluate against the
labels the binaries really export, and every dashboard expression runs.

Needs the PostgreSQL and Redis of `./trellis test` (run: ./trellis test -L ops)."""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
import unittest
import uuid
from pathlib import Path
from typing import Callable, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))

from harness import Stack, local  # noqa: E402  (needs the path above; puts deploy/local on it)

import prometheus  # noqa: E402
from test_dashboard import dashboard_exprs, load_dashboard, substitute_variables  # noqa: E402

T = TypeVar("T")
TARGETS_UP_WITHIN_S = 20.0
SERIES_WITHIN_S = 15.0


def poll(probe: Callable[[], T | None], timeout: float, each: Callable[[], None] = lambda: None
         ) -> T | None:
    """probe() until it returns something other than None or timeout passes; each() before
    every try."""
    deadline = time.monotonic() + timeout
    while True:
        each()
        value = probe()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(0.5)


def sample_value(samples: list[dict]) -> float | None:
    return float(samples[0]["value"][1]) if samples else None


class PrometheusScrapesTheStackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        admin_port, users_metrics_port, notifications_metrics_port = local.free_ports(3)
        cls.stack = Stack(
            users_overrides={"metrics": {"listen": f"127.0.0.1:{users_metrics_port}"}},
            gateway_overrides={"admin": {"address": "127.0.0.1", "port": admin_port}},
            notifications_overrides={
                "metrics": {"listen": f"127.0.0.1:{notifications_metrics_port}"}},
        ).start()
        cls.addClassCleanup(cls.stack.stop)
        work_dir = Path(tempfile.mkdtemp(prefix="trellis-prometheus-"))
        cls.addClassCleanup(shutil.rmtree, work_dir, ignore_errors=True)
        cls.prometheus = prometheus.Prometheus(work_dir)
        cls.prometheus.write_config(
            {"gateway": [f"127.0.0.1:{admin_port}"], "users": [f"127.0.0.1:{users_metrics_port}"],
             "notifications": [f"127.0.0.1:{notifications_metrics_port}"]},
            scrape_interval_s=1,
        )
        # Registered before start: a Prometheus that started but never got ready is stopped too.
        cls.addClassCleanup(cls.prometheus.stop)
        cls.prometheus.start(timeout=20, die_with_parent=True)

    def send_traffic(self) -> None:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        signup = {"email": email, "password": "correct horse", "display_name": "P"}
        response = self.stack.http("POST", "/v1/auth/signup", signup)
        self.assertEqual(response.status, 201, response.body)
        self.assertEqual(self.stack.http("GET", "/v1/users/me").status, 401)

    def diagnostics(self) -> str:
        try:
            targets = self.prometheus.active_targets()
        except prometheus.PrometheusError as error:
            targets = str(error)
        return f"targets: {targets}\n{self.prometheus.log_tail()}"

    def test_every_target_is_up(self):
        def all_up() -> list[dict] | None:
            targets = self.prometheus.active_targets()
            jobs = {target["labels"]["job"] for target in targets}
            healthy = all(target["health"] == "up" for target in targets)
            return targets if jobs == {"gateway", "users", "notifications"} and healthy else None

        self.assertTrue(poll(all_up, TARGETS_UP_WITHIN_S),
                        f"not every target up within {TARGETS_UP_WITHIN_S:.0f} s\n"
                        f"{self.diagnostics()}")
        up = {s["metric"]["job"]: sample_value([s]) for s in self.prometheus.query("up")}
        self.assertEqual(up, {"gateway": 1.0, "users": 1.0, "notifications": 1.0})

    def test_traffic_shows_in_queries(self):
        self.send_traffic()

        def counted(expr: str, at_least: float) -> Callable[[], float | None]:
            def probe() -> float | None:
                value = sample_value(self.prometheus.query(expr))
                return value if value is not None and value >= at_least else None
            return probe

        requests = poll(counted('sum(http_requests_total{job="gateway"})', 2), SERIES_WITHIN_S)
        self.assertIsNotNone(requests, self.diagnostics())
        signups = poll(counted('sum(users_signups_total{job="users",outcome="ok"})', 1),
                       SERIES_WITHIN_S)
        self.assertIsNotNone(signups, self.diagnostics())
        rpcs = poll(counted('sum(grpc_server_handled_total{job="users",code="OK"})', 1),
                    SERIES_WITHIN_S)
        self.assertIsNotNone(rpcs, self.diagnostics())
        # The series the pipeline alerts read, with the labels the rules keep.
        pending = poll(lambda: self.prometheus.query(
            'notifications_stream_pending{job="notifications",group="notifications"}') or None,
            SERIES_WITHIN_S)
        self.assertIsNotNone(pending, self.diagnostics())
        self.assertEqual([self.stack.orders_stream], [s["metric"]["stream"] for s in pending])

    def test_rules_load_and_record_the_slo_ratios(self):
        groups = {group["name"]: group for group in self.prometheus.rule_groups()}
        self.assertLessEqual(
            {"trellis-gateway-slo-ratios", "trellis-gateway-slo-alerts", "trellis-saturation",
             "trellis-pipelines", "trellis-targets"},
            set(groups),
        )

        # The ratios need two scrapes with traffic between them; send some on every try.
        def ratio(name: str) -> Callable[[], float | None]:
            def probe() -> float | None:
                value = sample_value(self.prometheus.query(name))
                return value if value is not None and not math.isnan(value) else None
            return probe

        # Only 201 and 401 answers: no request failed. How many took over 250 ms depends on the
        # machine, so the latency ratio is only checked to be a ratio: that proves the le="0.25"
        # bucket the SLO reads exists.
        availability = poll(ratio("gateway:slo_availability_errors:ratio_rate5m"),
                            SERIES_WITHIN_S, self.send_traffic)
        self.assertIsNotNone(availability, self.diagnostics())
        self.assertEqual(availability, 0.0)
        latency = poll(ratio("gateway:slo_latency_errors:ratio_rate5m"), SERIES_WITHIN_S,
                       self.send_traffic)
        self.assertIsNotNone(latency, self.diagnostics())
        self.assertTrue(0.0 <= latency <= 1.0, latency)

        def evaluated() -> list[dict] | None:
            all_rules = [rule for group in self.prometheus.rule_groups()
                         for rule in group["rules"]]
            return all_rules if all(rule["health"] == "ok" for rule in all_rules) else None

        self.assertTrue(poll(evaluated, SERIES_WITHIN_S),
                        [(r["name"], r["health"], r.get("lastError"))
                         for g in self.prometheus.rule_groups() for r in g["rules"]])
        firing = [alert for alert in self.prometheus.api("alerts")["alerts"]
                  if alert["state"] == "firing"]
        self.assertEqual(firing, [], "a healthy stack fires no alert")

    def test_dashboard_expressions_run(self):
        for title, expr in dashboard_exprs(load_dashboard()):
            with self.subTest(panel=title):
                try:
                    self.prometheus.api("query", query=substitute_variables(expr))
                except prometheus.PrometheusError as error:
                    self.fail(f"{expr}: {error}")


if __name__ == "__main__":
    unittest.main()
