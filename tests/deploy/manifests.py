"""Helpers shared by the deploy tests: repository paths, kustomize builds, label matching."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
# Every build an operator applies (the name is what the tests print).
BUILDS = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
    "prod/migrate": K8S / "overlays" / "prod" / "migrate",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


class BuildError(AssertionError):
    pass


def kubectl() -> str:
    path = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not Path(path).exists():
        raise BuildError("kubectl (with kustomize) is required: it ships with the dev image")
    return path


def kustomize(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize DIRECTORY` renders (offline: no helm charts used)."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def name_of(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(objects: list[dict], *kinds: str) -> list[dict]:
    return [obj for obj in objects if obj.get("kind") in kinds]


def pod_template(obj: dict) -> dict:
    return obj["spec"]["template"]


def containers(obj: dict) -> Iterator[dict]:
    spec = pod_template(obj)["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def selector_matches(selector: dict, labels: dict) -> bool:
    """Label-selector semantics (matchLabels and matchExpressions) against a pod's labels."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        match_labels = selector.get("matchLabels", {})
        expressions = selector.get("matchExpressions", [])
    else:  # a Service's plain map
        match_labels, expressions = selector, []
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in expressions:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def service_dirs() -> list[str]:
    """The services: every directory of base/ except the shared platform and the gateway."""
    return sorted(
        p.name for p in (K8S / "base").iterdir()
        if p.is_dir() and p.name not in ("platform", "gateway")
    )


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())
