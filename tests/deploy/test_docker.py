"""deploy/docker: the Dockerfile's invariants (Debian 12, non-root, no secrets, runtime libraries
only) checked by reading it, and its scripts run for real (no container runtime needed)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

from manifests import REPO

DOCKER = REPO / "deploy" / "docker"
SECRET_WORD = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|_KEY\b", re.IGNORECASE)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, arguments = text.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """Stage name → its instructions (FROM first), in file order."""
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, arguments in instructions(dockerfile):
        if keyword == "FROM":
            current = arguments.split()[-1] if " AS " in arguments.upper() else arguments
            result[current] = []
        result[current].append((keyword, arguments))
    return result


def trellis_packages() -> list[str]:
    """The package list of `./trellis deps` (required_packages in the script)."""
    text = (REPO / "trellis").read_text()
    body = re.search(r"required_packages\(\) \{.*?packages=\((.*?)\n  \)", text, re.S)
    assert body, "required_packages() not found in ./trellis"
    words = []
    for line in body[1].splitlines():
        words += line.split("#", 1)[0].split()
    return words


def build_dir() -> Path:
    value = os.environ.get("TRELLIS_BUILD_DIR")
    if not value:
        raise AssertionError("TRELLIS_BUILD_DIR is not set: run ./trellis test (or ctest)")
    return Path(value)


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        self.stages = stages(DOCKER / "Dockerfile")

    def test_stages_are_debian_12_and_runtime_is_the_default_target(self):
        self.assertEqual(["build", "provision", "runtime"], list(self.stages))
        self.assertEqual("debian:12 AS build", self.stages["build"][0][1])
        for stage in ("provision", "runtime"):
            self.assertEqual(f"debian:12-slim AS {stage}", self.stages[stage][0][1])

    def test_shipped_stages_run_as_a_numeric_non_root_user(self):
        for stage in ("provision", "runtime"):
            users = [args for keyword, args in self.stages[stage] if keyword == "USER"]
            with self.subTest(stage=stage):
                self.assertTrue(users, "no USER instruction")
                uid = users[-1].split(":")[0]
                self.assertRegex(uid, r"^\d+$", "numeric, so runAsNonRoot can verify it")
                self.assertNotEqual("0", uid)
                keywords = [keyword for keyword, _ in self.stages[stage]]
                self.assertNotIn("RUN", keywords[keywords.index("USER"):],
                                 "nothing runs as root after USER")

    def test_build_stage_installs_the_dev_packages_of_trellis_deps(self):
        wanted = {p for p in trellis_packages()
                  if p.endswith("-dev") and p not in ("libgtest-dev", "libgmock-dev")}
        wanted |= {"cmake", "g++", "ninja-build", "pkg-config", "protobuf-compiler",
                   "protobuf-compiler-grpc"}
        installed = " ".join(args for keyword, args in self.stages["build"] if keyword == "RUN")
        for package in sorted(wanted):
            with self.subTest(package=package):
                self.assertRegex(installed, rf"(^|\s){re.escape(package)}(\s|$)")

    def test_runtime_stage_installs_no_build_tools(self):
        text = " ".join(args for _, args in self.stages["runtime"])
        self.assertNotRegex(text, r"-dev\b|\bg\+\+|\bcmake\b")
        self.assertIn("COPY --from=build /out/packages.txt", " ".join(
            f"{k} {a}" for k, a in self.stages["runtime"]))

    def test_apt_installs_are_minimal_and_leave_no_lists(self):
        for stage, body in self.stages.items():
            for keyword, arguments in body:
                if keyword == "RUN" and "apt-get install" in arguments:
                    with self.subTest(stage=stage):
                        self.assertIn("--no-install-recommends", arguments)
                        self.assertIn("rm -rf /var/lib/apt/lists/*", arguments)

    def test_no_secret_is_baked_in(self):
        for stage, body in self.stages.items():
            for keyword, arguments in body:
                with self.subTest(stage=stage, instruction=f"{keyword} {arguments[:40]}"):
                    if keyword in ("ENV", "ARG", "LABEL"):
                        self.assertNotRegex(arguments, SECRET_WORD)
                    if keyword in ("COPY", "ADD"):
                        self.assertNotRegex(arguments, r"\.pem|\.trellis|secret|://")
        ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        for pattern in ("*", "**/.trellis/", "**/*.pem", "**/build/"):
            self.assertIn(pattern, ignore)
        self.assertNotIn("!.trellis/", ignore)


class DockerScriptsTest(unittest.TestCase):
    def test_collect_runtime_finds_runtime_packages_and_project_libraries(self):
        expected = {
            "gateway": {"libgrpc++1.51", "libprotobuf32", "libhiredis0.14", "libssl3"},
            "users": {"libgrpc++1.51", "libprotobuf32", "libhiredis0.14", "libssl3",
                      "libpqxx-6.4", "libsodium23", "libjemalloc2"},
            "orders": {"libgrpc++1.51", "libprotobuf32", "libhiredis0.14", "libpqxx-6.4",
                       "libjemalloc2"},
            "notifications": {"libgrpc++1.51", "libprotobuf32", "libhiredis0.14",
                              "libpqxx-6.4", "libjemalloc2"},
        }
        binaries = {"gateway": "gateway/trellis-gateway", "users": "services/users/trellis-users",
                    "orders": "services/orders/trellis-orders",
                    "notifications": "services/notifications/trellis-notifications"}
        for component, relative in binaries.items():
            binary = build_dir() / relative
            with self.subTest(component=component):
                self.assertTrue(binary.exists(),
                                f"{binary} is missing: build first (./trellis build)")
                with tempfile.TemporaryDirectory() as out:
                    result = subprocess.run(
                        [str(DOCKER / "collect-runtime.sh"), str(binary), out],
                        capture_output=True, text=True, timeout=60, check=False)
                    self.assertEqual(0, result.returncode, result.stderr)
                    packages = set((Path(out) / "packages.txt").read_text().split())
                    self.assertLessEqual(expected[component], packages)
                    self.assertEqual(set(), {p for p in packages if p.endswith("-dev")})
                    self.assertIn("libtrellis_proto.so", os.listdir(Path(out) / "lib"))
                    self.assertTrue((Path(out) / "bin" / binary.name).exists())

    def test_entrypoint_turns_files_into_settings_and_hides_the_file_variables(self):
        with tempfile.TemporaryDirectory() as tmp:
            stub = Path(tmp) / "trellis-users"
            stub.write_text("#!/bin/sh\nenv | grep '^TRELLIS_' | sort\necho \"args: $*\"\n")
            stub.chmod(0o755)
            secret = Path(tmp) / "password"
            secret.write_text("s3cret with spaces\n\n")
            env = {"PATH": "/usr/bin:/bin", "TRELLIS_COMPONENT": "users", "TRELLIS_BIN_DIR": tmp,
                   "TRELLIS_FILE__USERS__DATABASE__PASSWORD": str(secret)}
            result = subprocess.run([str(DOCKER / "entrypoint.sh"), "--config", "c.json"],
                                    env=env, capture_output=True, text=True, timeout=10)
            self.assertEqual(0, result.returncode, result.stderr)
            self.assertIn("TRELLIS_USERS__DATABASE__PASSWORD=s3cret with spaces\n", result.stdout)
            self.assertNotIn("TRELLIS_FILE__", result.stdout)
            self.assertIn("args: --config c.json", result.stdout)

            env["TRELLIS_FILE__USERS__DATABASE__PASSWORD"] = str(Path(tmp) / "missing")
            result = subprocess.run([str(DOCKER / "entrypoint.sh")], env=env,
                                    capture_output=True, text=True, timeout=10)
            self.assertEqual(78, result.returncode)
            self.assertIn("TRELLIS_FILE__USERS__DATABASE__PASSWORD", result.stderr)

    def test_provision_creates_each_secret_once_for_its_reader_only(self):
        uid = os.getuid()
        # As root (CI, the image) files go to the readers' uids; otherwise to ourselves.
        postgres_uid, service_uid = (999, 10001) if uid == 0 else (uid, uid)
        with tempfile.TemporaryDirectory() as root:
            for name in ("postgres", "users", "orders", "notifications"):
                (Path(root) / name).mkdir()
            env = {"PATH": "/usr/bin:/bin", "SECRETS_ROOT": root,
                   "POSTGRES_UID": str(postgres_uid), "SERVICE_UID": str(service_uid)}
            run = lambda: subprocess.run(  # noqa: E731
                [str(DOCKER / "provision.sh"), "secrets"], env=env, capture_output=True,
                text=True, timeout=30)
            first = run()
            self.assertEqual(0, first.returncode, first.stderr)
            files = {p.relative_to(root).as_posix(): p
                     for p in Path(root).rglob("*") if p.is_file()}
            kid = files["users/active_kid"].read_text().strip()
            self.assertEqual(
                {"postgres/password", "users/db-password", "orders/db-password",
                 "notifications/db-password", "users/active_kid", f"users/keys/{kid}.pem"},
                set(files))
            snapshot = {name: path.read_bytes() for name, path in files.items()}
            for name, path in files.items():
                with self.subTest(file=name):
                    info = path.stat()
                    self.assertEqual(0o400, info.st_mode & 0o777)
                    wanted = postgres_uid if name.startswith("postgres/") else service_uid
                    self.assertEqual(wanted, info.st_uid)
            key = subprocess.run(["openssl", "pkey", "-in", str(files[f"users/keys/{kid}.pem"]),
                                  "-noout", "-text"], capture_output=True, text=True, timeout=10)
            self.assertIn("ED25519", key.stdout)

            second = run()
            self.assertEqual(0, second.returncode, second.stderr)
            self.assertEqual("", second.stdout, "nothing is created twice")
            self.assertEqual(snapshot, {n: p.read_bytes() for n, p in files.items()})


if __name__ == "__main__":
    unittest.main()
