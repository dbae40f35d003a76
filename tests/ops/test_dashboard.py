"""deploy/grafana/trellis-overview.json: valid JSON, importable (Prometheus data source as the
DS_PROMETHEUS input and variable), every panel queries that data source, and every expression
is valid PromQL that uses only metric names Trellis exports (tests/ops/metric_names.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import yaml

from metric_names import KNOWN_METRICS, RECORDED, metric_names, unknown_names, variable_query_names

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "trellis-overview.json"
RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# What Grafana puts in place of its variables, so that promtool can parse the expressions.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$route": ".*",
    "$service": ".*",
}


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    """Top-level panels and those nested in collapsed rows."""
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) for every query target."""
    return [
        (panel.get("title", "?"), target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def substitute_variables(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def recorded_in_rules() -> set[str]:
    names = set()
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names


class MetricNamesReaderTest(unittest.TestCase):
    """The reader the other checks depend on must neither miss names nor invent them."""

    def test_reads_names_and_skips_functions_labels_and_variables(self):
        expr = (
            'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket'
            '{job="gateway",route=~"$route"}[$__rate_interval]))) / on (job) group_left '
            "gateway:slo_latency_errors:ratio_rate5m > 14.4 * 0.001 and up offset 5m or "
            'sum(rate(x_total{a="sum(y)"}[5m])) without (instance) > 1e-3'
        )
        self.assertEqual(
            metric_names(expr),
            {"http_request_duration_seconds_bucket", "gateway:slo_latency_errors:ratio_rate5m",
             "up", "x_total"},
        )

    def test_variable_queries(self):
        self.assertEqual(
            variable_query_names('label_values(http_requests_total{job="gateway"}, route)'),
            {"http_requests_total"},
        )
        self.assertEqual(variable_query_names("label_values(job)"), set())


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dashboard = load_dashboard()

    def test_is_a_current_grafana_dashboard(self):
        self.assertGreaterEqual(self.dashboard["schemaVersion"], 36)
        self.assertEqual(self.dashboard["uid"], "trellis-overview")
        self.assertTrue(self.dashboard["title"])
        inputs = {entry["name"]: entry for entry in self.dashboard.get("__inputs", [])}
        self.assertEqual(inputs["DS_PROMETHEUS"]["type"], "datasource")
        self.assertEqual(inputs["DS_PROMETHEUS"]["pluginId"], "prometheus")
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["DS_PROMETHEUS"]["type"], "datasource")
        self.assertEqual(variables["DS_PROMETHEUS"]["query"], "prometheus")

    def test_panels_have_ids_and_do_not_overlap(self):
        panels = all_panels(self.dashboard)
        ids = [panel["id"] for panel in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        cells: dict[tuple[int, int], str] = {}
        for panel in self.dashboard["panels"]:
            grid = panel["gridPos"]
            self.assertLessEqual(grid["x"] + grid["w"], 24, panel["title"])
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    overlapped = cells.get((x, y))
                    self.assertIsNone(overlapped, f"{panel['title']} overlaps {overlapped}")
                    cells[(x, y)] = panel["title"]

    def test_every_panel_queries_the_prometheus_input(self):
        for panel in all_panels(self.dashboard):
            with self.subTest(panel=panel.get("title")):
                if panel["type"] == "row":
                    self.assertFalse(panel.get("targets"), "rows do not query")
                    continue
                self.assertEqual(panel.get("datasource"), DATASOURCE)
                self.assertTrue(panel.get("targets"), "a panel without a query")
                for target in panel["targets"]:
                    self.assertEqual(target.get("datasource"), DATASOURCE)
                    self.assertTrue(target.get("expr", "").strip())
        for variable in self.dashboard["templating"]["list"]:
            if variable["type"] == "query":
                with self.subTest(variable=variable["name"]):
                    self.assertEqual(variable.get("datasource"), DATASOURCE)

    def test_expressions_use_only_exported_metric_names(self):
        for title, expr in dashboard_exprs(self.dashboard):
            with self.subTest(panel=title):
                self.assertTrue(metric_names(expr), f"no metric found in {expr}")
                self.assertEqual(unknown_names(expr), set(), f"in {expr}")
        for variable in self.dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            with self.subTest(variable=variable["name"]):
                names = variable_query_names(query)
                self.assertTrue(names <= KNOWN_METRICS, f"unknown metric in {query}")

    def test_recorded_series_it_reads_are_recorded_by_the_rules(self):
        used = set()
        for _, expr in dashboard_exprs(self.dashboard):
            used |= metric_names(expr) & RECORDED
        self.assertTrue(used, "the error-budget panels read the recorded SLO ratios")
        self.assertEqual(used - recorded_in_rules(), set())

    def test_covers_red_latency_budget_auth_pool_and_business_metrics(self):
        used = set()
        for _, expr in dashboard_exprs(self.dashboard):
            used |= metric_names(expr)
        for name in (
            "http_requests_total", "http_request_duration_seconds_bucket",
            "grpc_server_handled_total", "grpc_server_handling_seconds_bucket",
            "gateway:slo_availability_errors:ratio_rate1h", "gateway_auth_decisions_total",
            "db_pool_connections", "users_signups_total", "users_logins_total",
            "orders_created_total", "notifications_delivered_total",
        ):
            self.assertIn(name, used)
        quantiles = {
            float(q) for _, expr in dashboard_exprs(self.dashboard)
            for q in re.findall(r"histogram_quantile\(\s*([0-9.]+)", expr)
        }
        self.assertLessEqual({0.5, 0.99}, quantiles)

    def test_expressions_are_valid_promql(self):
        """promtool parses every expression, as a recording rule, with Grafana's variables
        replaced by typical values."""
        promtool = shutil.which("promtool")
        if promtool is None:
            self.fail("promtool not found: install the Debian package prometheus (./trellis deps)")
        rules = [
            {"record": f"dashboard:check_{index}", "expr": substitute_variables(expr)}
            for index, (_, expr) in enumerate(dashboard_exprs(self.dashboard))
        ]
        with tempfile.TemporaryDirectory(prefix="trellis-dashboard-") as tmp:
            path = Path(tmp) / "dashboard.yml"
            path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
            result = subprocess.run(
                [promtool, "check", "rules", str(path)],
                capture_output=True, text=True, timeout=60, check=False,
            )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
