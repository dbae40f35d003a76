"""deploy/prometheus: the rules load (promtool check rules), their unit tests pass (promtool test
rules), every alert is tested both firing and quiet, carries summary, description and a runbook
link into docs/OPERATIONS.md, and uses only metric names Trellis exports; the configuration that
deploy/local/prometheus.py writes is valid (promtool check config)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

from metric_names import KNOWN_METRICS, RECORDED, unknown_names

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
OPERATIONS_DOC = REPO_ROOT / "docs" / "OPERATIONS.md"
RUNBOOK = re.compile(r"^docs/OPERATIONS\.md#([a-z0-9-]+)$")
SEVERITIES = {"page", "ticket", "warning"}

sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))
import prometheus  # noqa: E402  (needs the path above)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError(
            "promtool not found: install the Debian package prometheus (./trellis deps)"
        )
    return path


def run_promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def rules() -> list[dict]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append({**rule, "file": path.name, "group": group["name"]})
    return found


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


class PromtoolTest(unittest.TestCase):
    def test_rule_files_exist(self):
        self.assertTrue(RULE_FILES, "no rule files in deploy/prometheus/rules")
        self.assertTrue(TEST_FILES, "no rule tests in deploy/prometheus/tests")

    def test_check_rules(self):
        result = run_promtool("check", "rules", *map(str, RULE_FILES))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_rule_unit_tests(self):
        result = run_promtool("test", "rules", *(str(p.relative_to(PROMETHEUS_DIR))
                                                  for p in TEST_FILES))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_rendered_config_is_valid(self):
        with tempfile.TemporaryDirectory(prefix="trellis-prometheus-config-") as tmp:
            path = prometheus.write_config(
                Path(tmp) / "prometheus.yml",
                {"gateway": ["127.0.0.1:9100", "127.0.0.1:9101"], "users": ["localhost:9464"],
                 "notifications": ["localhost:9465"]},
                scrape_interval_s=1,
            )
            result = run_promtool("check", "config", str(path))
            config = yaml.safe_load(path.read_text())
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(config["global"]["scrape_interval"], "1s")
        self.assertEqual(config["global"]["scrape_timeout"], "1s")
        jobs = {job["job_name"]: job["static_configs"][0]["targets"]
                for job in config["scrape_configs"]}
        self.assertEqual(jobs, {"gateway": ["127.0.0.1:9100", "127.0.0.1:9101"],
                                "users": ["localhost:9464"],
                                "notifications": ["localhost:9465"]})

    def test_config_refuses_bad_targets(self):
        for targets in ({"gate way": ["127.0.0.1:1"]}, {"users": ["127.0.0.1"]},
                        {"users": ["http://127.0.0.1:1/metrics"]}, {"users": []}):
            with self.subTest(targets=targets), self.assertRaises(ValueError):
                prometheus.render_config(targets)


class RulesContentTest(unittest.TestCase):
    def test_every_alert_is_tested_firing_and_quiet(self):
        firing, quiet = set(), set()
        for path in TEST_FILES:
            for test in yaml.safe_load(path.read_text())["tests"]:
                for case in test.get("alert_rule_test", []):
                    (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
        for rule in alerts():
            with self.subTest(alert=rule["alert"]):
                self.assertIn(rule["alert"], firing, "no test where it fires")
                self.assertIn(rule["alert"], quiet, "no test where it stays quiet")

    def test_alerts_are_documented(self):
        names = [rule["alert"] for rule in alerts()]
        self.assertEqual(len(names), len(set(names)), "alert names must be unique")
        for rule in alerts():
            with self.subTest(alert=rule["alert"]):
                annotations = rule.get("annotations", {})
                self.assertTrue(annotations.get("summary"))
                self.assertTrue(annotations.get("description"))
                self.assertRegex(annotations.get("runbook", ""), RUNBOOK)
                self.assertIn(rule.get("labels", {}).get("severity"), SEVERITIES)

    def test_rules_use_only_exported_metric_names(self):
        for rule in rules():
            with self.subTest(rule=rule.get("alert") or rule.get("record")):
                self.assertEqual(unknown_names(rule["expr"]), set(), rule["expr"])

    def test_recorded_series_match_the_known_list(self):
        recorded = {rule["record"] for rule in rules() if "record" in rule}
        self.assertEqual(recorded, set(RECORDED))
        self.assertFalse(recorded & KNOWN_METRICS)

    def test_runbook_anchors_exist_in_the_operations_doc(self):
        if not OPERATIONS_DOC.exists():
            self.skipTest(f"{OPERATIONS_DOC.relative_to(REPO_ROOT)} is not written yet")
        headings = {
            github_anchor(line.lstrip("#"))
            for line in OPERATIONS_DOC.read_text().splitlines()
            if line.startswith("#")
        }
        for rule in alerts():
            anchor = RUNBOOK.match(rule["annotations"]["runbook"]).group(1)
            with self.subTest(alert=rule["alert"]):
                self.assertIn(anchor, headings, f"no heading for #{anchor} in OPERATIONS.md")


if __name__ == "__main__":
    unittest.main()
