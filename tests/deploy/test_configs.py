"""The component configurations that deploy/k8s and deploy/compose ship are accepted by the real
binaries: each binary loads its config plus the environment its manifest gives it, exactly as in
a container, and must not refuse it (exit 78, "invalid configuration"). Nothing is served to
anyone: databases and Redis point at a closed local port, listeners at 127.0.0.1:0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import unittest
from pathlib import Path

import yaml

from manifests import BUILDS, REPO, containers, kustomize, of_kind

BINARIES = {
    "users": "services/users/trellis-users",
    "orders": "services/orders/trellis-orders",
    "notifications": "services/notifications/trellis-notifications",
    "gateway": "gateway/trellis-gateway",
}
EX_CONFIG = 78
READY_LINE = '"msg":"gateway listening"'
SERVICE_READY_LINE = '"msg":"grpc server listening"'


def build_dir() -> Path:
    value = os.environ.get("TRELLIS_BUILD_DIR")
    if not value:
        raise AssertionError("TRELLIS_BUILD_DIR is not set: run ./trellis test (or ctest)")
    return Path(value)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once the socket is closed


def isolated_env(component: str, env: dict[str, str]) -> dict[str, str]:
    """The manifest's environment, with every network endpoint pointed at this machine."""
    prefix = f"TRELLIS_{component.upper()}__"
    port = str(closed_port())
    local = {"PATH": "/usr/bin:/bin", **env}
    if component == "gateway":
        local.update({f"{prefix}LISTEN__ADDRESS": "127.0.0.1", f"{prefix}LISTEN__PORT": "0",
                      f"{prefix}ADMIN__ADDRESS": "127.0.0.1", f"{prefix}ADMIN__PORT": "0",
                      f"{prefix}SHUTDOWN__DRAIN_DELAY_MS": "0", f"{prefix}SHUTDOWN__GRACE_MS": "0"})
    else:
        local.update({f"{prefix}DATABASE__HOST": "127.0.0.1", f"{prefix}DATABASE__PORT": port,
                      f"{prefix}GRPC__LISTEN": "127.0.0.1:0"})
    local.update({f"{prefix}REDIS__HOST": "127.0.0.1", f"{prefix}REDIS__PORT": port})
    return local


class ConfigsAcceptedTest(unittest.TestCase):
    def check(self, component: str, config: str, env: dict[str, str], serve: bool = False) -> str:
        """Runs the component with config and env; returns its output. Services run `migrate`
        (config, then a refused database connection) unless serve is set; servers are stopped
        as soon as they listen."""
        binary = build_dir() / BINARIES[component]
        self.assertTrue(binary.exists(), f"{binary} is missing: build first (./trellis build)")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.json"
            path.write_text(config)
            argv = [str(binary), "--config", str(path)]
            if component != "gateway" and not serve:
                argv.append("migrate")  # loads the config, then fails on the closed database port
            process = subprocess.Popen(argv, env=isolated_env(component, env),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # Whatever happens, nothing outlives the test by more than a few seconds.
            watchdog = threading.Timer(20, process.kill)
            watchdog.start()
            try:
                lines = []
                for line in process.stdout:
                    lines.append(line)
                    if READY_LINE in line or SERVICE_READY_LINE in line:
                        # Serving: the config (and the routes' upstreams) were accepted.
                        process.send_signal(signal.SIGTERM)
                code = process.wait()
            finally:
                watchdog.cancel()
            output = "".join(lines)
        self.assertNotIn("invalid configuration", output)
        self.assertNotEqual(EX_CONFIG, code, output)
        self.assertIn("effective configuration", output)
        if component == "gateway":
            self.assertIn(READY_LINE, output)
        if serve:
            self.assertIn(SERVICE_READY_LINE, output)
        elif component != "gateway":
            # Config accepted, `migrate` understood, then the closed database port refused.
            self.assertEqual(1, code, output)
            self.assertIn("Connection refused", output)
        return output

    def test_kubernetes_configs_with_the_deployments_environment(self):
        for build in ("dev", "prod", "prod/migrate"):
            objects = kustomize(BUILDS[build])
            config_maps = {c["metadata"]["name"]: c["data"] for c in of_kind(objects, "ConfigMap")}
            platform = next((d for n, d in config_maps.items() if n.startswith("trellis-platform")),
                            {})
            for workload in of_kind(objects, "Deployment", "Job"):
                component = workload["metadata"]["labels"]["app.kubernetes.io/name"]
                volumes = workload["spec"]["template"]["spec"]["volumes"]
                config_name = next(v["configMap"]["name"] for v in volumes if v["name"] == "config")
                env = {}
                for container in containers(workload):
                    for item in container.get("env", []):
                        source = item.get("valueFrom", {})
                        if "configMapKeyRef" in source:
                            env[item["name"]] = platform[source["configMapKeyRef"]["key"]]
                        elif "secretKeyRef" in source:
                            env[item["name"]] = "from-a-secret"
                        else:
                            env[item["name"]] = item["value"]
                with self.subTest(build=build, workload=workload["metadata"]["name"]):
                    self.check(component, config_maps[config_name]["config.json"], env)

    def test_users_loads_signing_keys_from_a_secret_volume(self):
        """A Secret volume holds ..data/ and symlinks, plus the active_kid key as a file: only the
        *.pem files are keys, and the dev key must load as the active one."""
        dev = REPO / "deploy" / "k8s" / "overlays" / "dev" / "dev-secrets"
        kid = (dev / "active_kid").read_text()
        with tempfile.TemporaryDirectory() as keys:
            version = Path(keys) / "..2030_01_01_00_00_00.000000001"
            version.mkdir()
            for name in (f"{kid}.pem", "active_kid"):
                (version / name).write_bytes((dev / name).read_bytes())
                (Path(keys) / name).symlink_to(Path("..data") / name)
            (Path(keys) / "..data").symlink_to(version.name)
            config = (REPO / "deploy/k8s/base/users/config/users.json").read_text()
            env = {"TRELLIS_USERS__TOKENS__KEYS_DIR": keys,
                   "TRELLIS_USERS__TOKENS__ACTIVE_KID": kid,
                   "TRELLIS_USERS__MIGRATE_ON_START": "false",
                   "TRELLIS_USERS__METRICS__LISTEN": "127.0.0.1:0",
                   "TRELLIS_USERS__SHUTDOWN__DRAIN_DELAY_MS": "0",
                   "TRELLIS_USERS__SHUTDOWN__GRACE_MS": "0"}
            output = self.check("users", config, env, serve=True)
        loaded = [json.loads(line) for line in output.splitlines()
                  if '"msg":"signing key loaded"' in line]
        self.assertEqual([(kid, 1)], [(line["kid"], line["active"]) for line in loaded])

    def test_compose_configs_with_the_services_environment(self):
        compose_dir = REPO / "deploy" / "compose"
        compose = yaml.safe_load((compose_dir / "compose.yaml").read_text())
        for name, service in compose["services"].items():
            if name not in BINARIES:
                continue
            env = {}
            for key, value in (service.get("environment") or {}).items():
                # The image's entrypoint turns TRELLIS_FILE__X=path into TRELLIS_X=<file content>.
                if key.startswith("TRELLIS_FILE__"):
                    env["TRELLIS_" + key.removeprefix("TRELLIS_FILE__")] = "from-a-file"
                else:
                    env[key] = str(value)
            mount = next(v for v in service["volumes"]
                         if v.endswith(":/etc/trellis/config.json:ro"))
            config = (compose_dir / mount.split(":")[0]).read_text()
            with self.subTest(service=name):
                json.loads(config)
                self.check(name, config, env)


if __name__ == "__main__":
    unittest.main()
