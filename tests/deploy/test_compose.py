"""deploy/compose: the stack file is consistent and hardened. No container runtime is needed:
the YAML is checked against the invariants `docker compose up` relies on (and, where the compose
plugin exists, `docker compose config` validates it too)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unittest

import yaml

from manifests import REPO

COMPOSE_DIR = REPO / "deploy" / "compose"
SECRET_WORD = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|KID$", re.IGNORECASE)
ONE_SHOTS = {"secrets", "provision"}
TRELLIS = {"users", "orders", "notifications", "gateway"}


def compose() -> dict:
    return yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())


def config_of(service: dict) -> dict:
    mount = next(v for v in service["volumes"] if v.endswith(":/etc/trellis/config.json:ro"))
    return json.loads((COMPOSE_DIR / mount.split(":")[0]).read_text())


class ComposeTest(unittest.TestCase):
    def setUp(self):
        self.file = compose()
        self.services = self.file["services"]

    def test_the_stack_is_complete(self):
        self.assertEqual({"secrets", "postgres", "provision", "redis"} | TRELLIS,
                         set(self.services))
        self.assertEqual("postgres:15", self.services["postgres"]["image"])
        self.assertEqual("redis:7", self.services["redis"]["image"])

    def test_images_are_built_from_the_one_dockerfile(self):
        for name, service in self.services.items():
            if "build" not in service:
                continue
            build = service["build"]
            with self.subTest(service=name):
                self.assertEqual("deploy/docker/Dockerfile", build["dockerfile"])
                self.assertEqual(REPO, (COMPOSE_DIR / build["context"]).resolve())
                if name in TRELLIS:
                    self.assertEqual({"COMPONENT": name}, build["args"])
                else:
                    self.assertEqual("provision", build["target"])

    def test_dependencies_exist_and_wait_for_the_right_condition(self):
        for name, service in self.services.items():
            for dependency, rule in (service.get("depends_on") or {}).items():
                with self.subTest(service=name, dependency=dependency):
                    self.assertIn(dependency, self.services)
                    wanted = ("service_completed_successfully" if dependency in ONE_SHOTS
                              else "service_healthy")
                    self.assertEqual(wanted, rule["condition"])
                    if wanted == "service_healthy":
                        self.assertIn("healthcheck", self.services[dependency])
        order = ["secrets", "postgres", "provision", "users", "gateway"]
        for before, after in zip(order, order[1:]):
            self.assertIn(before, self.services[after]["depends_on"])

    def test_long_running_services_are_healthchecked_and_restarted(self):
        for name, service in self.services.items():
            with self.subTest(service=name):
                if name in ONE_SHOTS:
                    self.assertEqual("no", service["restart"])
                else:
                    self.assertEqual("unless-stopped", service["restart"])
                    self.assertIn("healthcheck", service)

    def test_containers_are_hardened(self):
        for name, service in self.services.items():
            with self.subTest(service=name):
                self.assertIs(True, service.get("read_only"))
                self.assertEqual(["ALL"], service.get("cap_drop"))
                self.assertIn("no-new-privileges:true", service.get("security_opt", []))
                self.assertNotIn("privileged", service)
                self.assertNotIn("network_mode", service)
                if name in TRELLIS:
                    self.assertNotIn("user", service, "the image's uid 10001")
                    self.assertNotIn("cap_add", service)
                if name in ONE_SHOTS:
                    self.assertLessEqual(set(service["cap_add"]),
                                         {"CHOWN", "DAC_OVERRIDE", "FOWNER"})

    def test_only_the_gateway_is_published(self):
        published = {name for name, service in self.services.items() if service.get("ports")}
        self.assertEqual({"gateway"}, published)

    def test_no_secret_is_written_into_the_file(self):
        for name, service in self.services.items():
            for key, value in (service.get("environment") or {}).items():
                if SECRET_WORD.search(key):
                    with self.subTest(service=name, variable=key):
                        self.assertTrue(key.endswith("_FILE") or key.startswith("TRELLIS_FILE__"),
                                        "secrets come from files")
                        self.assertRegex(str(value), r"^/run/secrets/")

    def test_each_service_reads_only_its_own_secrets_volume(self):
        for name in TRELLIS - {"gateway"}:
            volume = f"{name}-secrets"
            with self.subTest(service=name):
                self.assertIn(volume, self.file["volumes"])
                mounts = {svc: [v for v in s.get("volumes", []) if v.startswith(volume + ":")]
                          for svc, s in self.services.items()}
                self.assertEqual({name, "secrets", "provision"},
                                 {svc for svc, found in mounts.items() if found})
                self.assertEqual([f"{volume}:/run/secrets/trellis:ro"], mounts[name])
                self.assertEqual([f"{volume}:/secrets/{name}"], mounts["secrets"])
                self.assertEqual([f"{volume}:/secrets/{name}:ro"], mounts["provision"])
        self.assertEqual([], [v for v in self.services["gateway"].get("volumes", [])
                              if "secrets" in v])

    def test_named_volumes_are_declared(self):
        for name, service in self.services.items():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                with self.subTest(service=name, volume=source):
                    if source.startswith("."):
                        self.assertTrue((COMPOSE_DIR / source).exists())
                    else:
                        self.assertIn(source, self.file["volumes"])

    def test_configs_point_at_the_compose_services(self):
        gateway = config_of(self.services["gateway"])
        self.assertEqual(TRELLIS - {"gateway"}, set(gateway["upstreams"]))
        for upstream, settings in gateway["upstreams"].items():
            port = config_of(self.services[upstream])["grpc"]["listen"].rsplit(":", 1)[1]
            self.assertEqual(f"dns:///{upstream}:{port}", settings["target"])
            self.assertIn(f"/dev/tcp/127.0.0.1/{port}",
                          " ".join(self.services[upstream]["healthcheck"]["test"]))
        for name in TRELLIS:
            config = config_of(self.services[name])
            with self.subTest(service=name):
                self.assertEqual("redis", config["redis"]["host"])
                if name != "gateway":
                    self.assertEqual("postgres", config["database"]["host"])
                    self.assertEqual(f"trellis_{name}", config["database"]["dbname"])
                    self.assertEqual(f"trellis_{name}", config["database"]["user"])
                    self.assertNotIn("password", config["database"])

    @unittest.skipUnless(shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False).returncode == 0,
        "the docker compose plugin is not installed here")
    def test_docker_compose_accepts_the_file(self):
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE_DIR / "compose.yaml"), "config", "--quiet"],
            capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(0, result.returncode, result.stderr)


if __name__ == "__main__":
    unittest.main()
