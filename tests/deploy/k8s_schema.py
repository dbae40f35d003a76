"""Offline validation of Kubernetes objects against the API schema.

The schema is the one generated into Debian's python3-kubernetes (22.6, Kubernetes API 1.22):
each model class lists every field with its JSON name (attribute_map) and type (openapi_types).
validate() walks an object against it and reports unknown fields, wrong types and missing
required fields, which is what the API server would refuse. Fields newer than 1.22 that we use
are added in NEWER_FIELDS; custom resources (operators' CRDs) are only checked for their header.

    errors = SchemaValidator().validate(obj)   # [] when the object is valid
"""

from __future__ import annotations

import re
from typing import Any

try:
    import kubernetes.client as k8s
    from kubernetes.client import ApiClient
except ImportError as e:  # pragma: no cover - depends on the machine
    raise ImportError(
        "python3-kubernetes is missing: run ./trellis deps (or apt-get install python3-kubernetes)"
    ) from e

# (apiVersion, kind) → model class name, for the built-in kinds the manifests use.
KINDS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("batch/v1", "Job"): "V1Job",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("networking.k8s.io/v1", "Ingress"): "V1Ingress",
    # autoscaling/v2 (GA in 1.23) has exactly the shape of v2beta2, which the 1.22 models know.
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
}

# Custom resources of the operators we declare: not in the built-in schema.
CUSTOM_GROUPS = ("postgresql.cnpg.io/", "databases.spotahome.com/")

# Fields added to the API after 1.22 that the manifests use: model → {json name: type}.
NEWER_FIELDS: dict[str, dict[str, str]] = {
    "V1Probe": {"grpc": "X_GRPCAction"},  # native gRPC probes, GA in 1.27
}
EXTRA_MODELS: dict[str, tuple[dict[str, str], set[str]]] = {
    "X_GRPCAction": ({"port": "int", "service": "str"}, {"port"}),
}

_LIST = re.compile(r"list\[(.+)\]$")
_DICT = re.compile(r"dict\(([^,]+), (.+)\)$")


def _fields(model: str) -> tuple[dict[str, str], set[str]]:
    """JSON field name → type for model, and the required JSON names (extras only)."""
    if model in EXTRA_MODELS:
        return EXTRA_MODELS[model]
    cls = getattr(k8s, model)
    fields = {cls.attribute_map[attr]: kind for attr, kind in cls.openapi_types.items()}
    fields.update(NEWER_FIELDS.get(model, {}))
    return fields, set()


def _check(value: Any, kind: str, path: str, errors: list[str]) -> None:
    if (match := _LIST.match(kind)) is not None:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(item, match[1], f"{path}[{i}]", errors)
    elif (match := _DICT.match(kind)) is not None:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(item, match[2], f"{path}.{key}", errors)
    elif kind == "str":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__} {value!r}")
    elif kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
    elif kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: expected a number, got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true/false, got {type(value).__name__} {value!r}")
    elif kind == "datetime":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a timestamp string, got {value!r}")
    elif kind == "object":
        # IntOrString (ports, maxUnavailable) and free-form fields.
        if value is None:
            errors.append(f"{path}: must not be null")
    else:
        _check_model(value, kind, path, errors)


def _check_model(value: Any, model: str, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({model}), got {type(value).__name__}")
        return
    fields, required = _fields(model)
    for key, item in value.items():
        if key not in fields:
            errors.append(f"{path}: unknown field {key!r} (not in {model})")
            continue
        if item is None:
            continue  # null means "unset" in a manifest
        _check(item, fields[key], f"{path}.{key}", errors)
    for key in sorted(required - value.keys()):
        errors.append(f"{path}: missing required field {key!r}")


def is_custom(obj: dict) -> bool:
    return str(obj.get("apiVersion", "")).startswith(CUSTOM_GROUPS)


class SchemaValidator:
    def __init__(self) -> None:
        self._client = ApiClient()

    def validate(self, obj: dict) -> list[str]:
        """Every problem found in one object (a dict as parsed from YAML), as readable strings."""
        if not isinstance(obj, dict):
            return [f"not an object: {obj!r}"]
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        name = (obj.get("metadata") or {}).get("name")
        where = f"{kind}/{name}"
        if not api_version or not kind or not name:
            return [f"{where}: apiVersion, kind and metadata.name are required"]
        if is_custom(obj):
            return []  # operators validate their own resources (their CRD schemas are not here)
        model = KINDS.get((api_version, kind))
        if model is None:
            return [f"{where}: no schema known for {api_version} {kind} (add it to KINDS)"]
        errors: list[str] = []
        _check_model(obj, model, where, errors)
        if not errors:
            errors += [f"{where}: {e}" for e in self._client_side_checks(obj, model)]
        return errors

    def _client_side_checks(self, obj: dict, model: str) -> list[str]:
        """The models' own validation (required fields, enumerations), run by deserializing."""
        try:
            # The generated deserializer is private; it runs the models' setters, which check.
            self._client._ApiClient__deserialize(obj, model)  # noqa: SLF001
        except (ValueError, TypeError) as e:
            return [f"{model}: {e}"]
        return []
