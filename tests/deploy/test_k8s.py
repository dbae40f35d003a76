"""deploy/k8s: every overlay builds offline, every object fits the Kubernetes API schema, and the
invariants the platform relies on hold (probes, limits, hardening, policies, budgets, secrets)."""

from __future__ import annotations

import base64
import json
import re
import unittest

from k8s_schema import SchemaValidator, is_custom
from manifests import (
    BUILDS, K8S, WORKLOAD_KINDS, containers, kustomize, load_yaml, name_of, of_kind,
    pod_template, selector_matches, service_dirs,
)

SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN)$", re.IGNORECASE)


class K8sManifestsTest(unittest.TestCase):
    builds: dict[str, list[dict]] = {}

    @classmethod
    def setUpClass(cls):
        cls.builds = {name: kustomize(path) for name, path in BUILDS.items()}

    def deployable(self):
        """(build name, objects) of what gets applied to a cluster (base alone is not)."""
        return [(name, objs) for name, objs in self.builds.items() if name != "base"]

    # ---- schema

    def test_every_object_fits_the_api_schema(self):
        validator = SchemaValidator()
        for build, objects in self.builds.items():
            for obj in objects:
                with self.subTest(build=build, object=name_of(obj)):
                    self.assertEqual([], validator.validate(obj))

    def test_custom_resources_are_the_declared_operators_only(self):
        custom = {(o["apiVersion"], o["kind"]) for _, objs in self.deployable() for o in objs
                  if is_custom(o)}
        self.assertEqual(
            {("postgresql.cnpg.io/v1", "Cluster"), ("databases.spotahome.com/v1", "RedisFailover")},
            custom)

    # ---- workloads

    def test_deployments_have_three_probes(self):
        for build, objects in self.deployable():
            for deployment in of_kind(objects, "Deployment"):
                for container in containers(deployment):
                    with self.subTest(build=build, deployment=name_of(deployment)):
                        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                            self.assertIn(probe, container)

    def test_services_use_native_grpc_probes_and_the_gateway_http(self):
        for build, objects in self.deployable():
            for deployment in of_kind(objects, "Deployment"):
                container = pod_template(deployment)["spec"]["containers"][0]
                ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
                with self.subTest(build=build, deployment=name_of(deployment)):
                    if "grpc" in ports:
                        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                            self.assertEqual({"port": ports["grpc"]}, container[probe].get("grpc"))
                    else:
                        self.assertEqual("/readyz", container["readinessProbe"]["httpGet"]["path"])
                        self.assertEqual("/healthz", container["livenessProbe"]["httpGet"]["path"])
                        self.assertEqual("/healthz", container["startupProbe"]["httpGet"]["path"])

    def test_every_pod_template_is_hardened_and_bounded(self):
        for build, objects in self.deployable():
            for workload in of_kind(objects, *WORKLOAD_KINDS):
                spec = pod_template(workload)["spec"]
                pod_security = spec.get("securityContext", {})
                with self.subTest(build=build, workload=name_of(workload)):
                    self.assertIs(False, spec.get("automountServiceAccountToken"))
                    self.assertNotIn("hostNetwork", spec)
                    for container in containers(workload):
                        security = container.get("securityContext", {})
                        self.assertTrue(
                            security.get("runAsNonRoot", pod_security.get("runAsNonRoot")))
                        self.assertIs(False, security.get("allowPrivilegeEscalation"))
                        self.assertIs(True, security.get("readOnlyRootFilesystem"))
                        self.assertEqual(["ALL"], security.get("capabilities", {}).get("drop"))
                        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile"))
                        self.assertEqual({"type": "RuntimeDefault"}, seccomp)
                        resources = container.get("resources", {})
                        for bound in ("requests", "limits"):
                            self.assertEqual({"cpu", "memory"}, set(resources.get(bound, {})),
                                             f"{container['name']}: {bound}")

    def test_images_are_tagged(self):
        for build, objects in self.deployable():
            for workload in of_kind(objects, *WORKLOAD_KINDS):
                for container in containers(workload):
                    image = container["image"]
                    with self.subTest(build=build, image=image):
                        self.assertRegex(image, r":[\w.-]+$|@sha256:")
                        self.assertFalse(image.endswith(":latest"))
                        if build.startswith("prod") and "trellis" in image:
                            self.assertIn("/", image.split(":")[0], "prod pulls from a registry")

    def test_deployments_are_scaled_by_an_autoscaling_v2_hpa(self):
        for build, objects in self.deployable():
            hpas = of_kind(objects, "HorizontalPodAutoscaler")
            for deployment in of_kind(objects, "Deployment"):
                with self.subTest(build=build, deployment=name_of(deployment)):
                    self.assertNotIn("replicas", deployment["spec"], "the HPA owns the count")
                    targets = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"]
                               == deployment["metadata"]["name"]]
                    self.assertEqual(1, len(targets))
                    self.assertEqual("autoscaling/v2", targets[0]["apiVersion"])
                    self.assertLessEqual(targets[0]["spec"]["minReplicas"],
                                         targets[0]["spec"]["maxReplicas"])
        prod_minimum = {h["metadata"]["name"]: h["spec"]["minReplicas"]
                        for h in of_kind(self.builds["prod"], "HorizontalPodAutoscaler")}
        self.assertTrue(all(n >= 2 for n in prod_minimum.values()), prod_minimum)

    def test_every_long_running_workload_has_a_disruption_budget(self):
        for build, objects in self.deployable():
            budgets = of_kind(objects, "PodDisruptionBudget")
            for workload in of_kind(objects, "Deployment", "StatefulSet"):
                labels = pod_template(workload)["metadata"]["labels"]
                with self.subTest(build=build, workload=name_of(workload)):
                    self.assertTrue(any(selector_matches(b["spec"]["selector"], labels)
                                        for b in budgets))

    # ---- services and traffic

    def test_every_service_selects_pods_of_a_workload(self):
        for build, objects in self.deployable():
            pods = [pod_template(w)["metadata"]["labels"]
                    for w in of_kind(objects, *WORKLOAD_KINDS)]
            for service in of_kind(objects, "Service"):
                with self.subTest(build=build, service=name_of(service)):
                    selector = service["spec"].get("selector")
                    self.assertTrue(selector, "a Service without selector")
                    self.assertTrue(any(selector_matches(selector, labels) for labels in pods))

    def test_namespace_denies_by_default_and_allows_dns(self):
        for build in ("dev", "prod"):
            policies = {p["metadata"]["name"]: p["spec"] for p in
                        of_kind(self.builds[build], "NetworkPolicy")}
            deny = policies["default-deny"]
            self.assertEqual({}, deny["podSelector"])
            self.assertEqual({"Ingress", "Egress"}, set(deny["policyTypes"]))
            self.assertNotIn("ingress", deny)
            self.assertNotIn("egress", deny)
            dns_ports = {p["port"] for rule in policies["allow-dns"]["egress"]
                         for p in rule["ports"]}
            self.assertEqual({53}, dns_ports)

    def test_every_pod_has_its_own_network_policy(self):
        for build in ("dev", "prod"):
            policies = [p for p in of_kind(self.builds[build], "NetworkPolicy")
                        if p["spec"]["podSelector"]]
            pods = of_kind(self.builds[build], *WORKLOAD_KINDS)
            if build == "prod":  # the migration Jobs run under the prod policies
                pods += of_kind(self.builds["prod/migrate"], "Job")
            for workload in pods:
                labels = pod_template(workload)["metadata"]["labels"]
                with self.subTest(build=build, workload=name_of(workload)):
                    matching = [p for p in policies
                                if selector_matches(p["spec"]["podSelector"], labels)]
                    self.assertTrue(matching)
                    for policy in matching:
                        self.assertEqual({"Ingress", "Egress"}, set(policy["spec"]["policyTypes"]))

    def test_policies_name_ports_the_pods_declare(self):
        for build in ("dev", "prod"):
            objects = self.builds[build]
            workloads = of_kind(objects, "Deployment", "StatefulSet")
            for policy in of_kind(objects, "NetworkPolicy"):
                selected = [w for w in workloads if selector_matches(
                    policy["spec"]["podSelector"], pod_template(w)["metadata"]["labels"])]
                declared = {p.get("name") for w in selected for c in containers(w)
                            for p in c.get("ports", [])}
                for rule in policy["spec"].get("ingress", []):
                    for port in rule.get("ports", []):
                        if isinstance(port["port"], str):
                            with self.subTest(build=build, policy=name_of(policy), port=port):
                                self.assertIn(port["port"], declared)

    def test_services_accept_traffic_from_the_gateway_only(self):
        for build in ("dev", "prod"):
            policies = {p["metadata"]["name"]: p["spec"] for p in
                        of_kind(self.builds[build], "NetworkPolicy")}
            for service in service_dirs():
                with self.subTest(build=build, service=service):
                    grpc_rules = [r for r in policies[service]["ingress"]
                                  if {"protocol": "TCP", "port": "grpc"} in r["ports"]]
                    self.assertEqual([[{"podSelector": {"matchLabels": {
                        "app.kubernetes.io/name": "gateway"}}}]], [r["from"] for r in grpc_rules])
                    database_rules = [r for r in policies[service]["egress"]
                                      if {"protocol": "TCP", "port": 5432} in r["ports"]]
                    self.assertEqual([[{"podSelector": {"matchLabels": {
                        "trellis.io/database-of": service}}}]], [r["to"] for r in database_rules])

    # ---- configuration and secrets

    def test_component_configs_are_json(self):
        for build, objects in self.deployable():
            for config_map in of_kind(objects, "ConfigMap"):
                if "config.json" in config_map.get("data", {}):
                    with self.subTest(build=build, config=name_of(config_map)):
                        self.assertIsInstance(json.loads(config_map["data"]["config.json"]), dict)

    def test_prod_declares_no_secret_and_no_literal_credential(self):
        for build in ("prod", "prod/migrate"):
            objects = self.builds[build]
            self.assertEqual([], [name_of(s) for s in of_kind(objects, "Secret")])
            for workload in of_kind(objects, *WORKLOAD_KINDS):
                for container in containers(workload):
                    for env in container.get("env", []):
                        if SECRET_NAME.search(env["name"]):
                            with self.subTest(build=build, env=env["name"]):
                                self.assertNotIn("value", env)
                                self.assertIn("secretKeyRef", env.get("valueFrom", {}))

    def test_dev_secrets_are_dev_only_and_complete(self):
        secrets = {s["metadata"]["name"].rsplit("-", 1)[0]: s for s in
                   of_kind(self.builds["dev"], "Secret")}
        for service in service_dirs():
            self.assertIn(f"{service}-db-app", secrets)
            self.assertEqual({"username", "password"}, set(secrets[f"{service}-db-app"]["data"]))
        keys = secrets["users-signing-keys"]["data"]
        kid = base64.b64decode(keys["active_kid"]).decode()
        self.assertEqual(kid.strip(), kid, "active_kid becomes an env value: no newline")
        self.assertTrue(kid.startswith("dev-"))
        self.assertIn(f"{kid}.pem", keys)

    def test_migrations_run_at_start_in_dev_and_as_jobs_in_prod(self):
        def platform(build):
            (config,) = [c for c in of_kind(self.builds[build], "ConfigMap")
                         if c["metadata"]["name"].startswith("trellis-platform")]
            return config["data"]
        self.assertEqual("true", platform("dev")["migrate_on_start"])
        self.assertEqual("false", platform("prod")["migrate_on_start"])
        jobs = {j["metadata"]["name"]: j for j in of_kind(self.builds["prod/migrate"], "Job")}
        self.assertEqual({f"{s}-migrate" for s in service_dirs()}, set(jobs))
        deployments = {d["metadata"]["name"]: d for d in of_kind(self.builds["prod"], "Deployment")}
        for service in service_dirs():
            with self.subTest(service=service):
                env = {e["name"] for c in containers(deployments[service]) for e in c["env"]}
                self.assertIn(f"TRELLIS_{service.upper()}__MIGRATE_ON_START", env)
                job = next(containers(jobs[f"{service}-migrate"]))
                self.assertEqual("migrate", job["args"][-1])
                self.assertEqual(next(containers(deployments[service]))["image"], job["image"])

    def test_prod_data_stores_come_from_operators_with_replicas(self):
        prod = self.builds["prod"]
        self.assertEqual([], of_kind(prod, "StatefulSet"), "no home-made database in prod")
        clusters = {c["metadata"]["name"]: c["spec"] for c in of_kind(prod, "Cluster")}
        for service in service_dirs():
            with self.subTest(service=service):
                spec = clusters[f"{service}-db"]
                self.assertGreaterEqual(spec["instances"], 2)
                self.assertEqual(f"trellis_{service}", spec["bootstrap"]["initdb"]["database"])
                self.assertEqual({"trellis.io/database-of": service},
                                 spec["inheritedMetadata"]["labels"])
        (redis,) = of_kind(prod, "RedisFailover")
        self.assertGreaterEqual(redis["spec"]["redis"]["replicas"], 2)

    # ---- layout: a service is a directory

    def test_every_service_is_wired_everywhere(self):
        base = load_yaml(K8S / "base" / "kustomization.yaml")["resources"]
        dev = load_yaml(K8S / "overlays" / "dev" / "kustomization.yaml")
        prod = load_yaml(K8S / "overlays" / "prod" / "kustomization.yaml")["resources"]
        migrate = load_yaml(K8S / "overlays" / "prod" / "migrate" / "kustomization.yaml")
        gateway = json.loads((K8S / "base" / "gateway" / "gateway.json").read_text())
        self.assertEqual(set(service_dirs()), set(gateway["upstreams"]))
        services = {s["metadata"]["name"]: s for s in of_kind(self.builds["prod"], "Service")}
        for service in service_dirs():
            with self.subTest(service=service):
                self.assertIn(service, base)
                self.assertIn(f"{service}-db", dev["resources"])
                self.assertIn(f"{service}-db", prod)
                self.assertIn(f"../../../base/{service}/migrate", migrate["resources"])
                self.assertIn(f"{service}-db-app", [g["name"] for g in dev["secretGenerator"]])
                port = services[service]["spec"]["ports"][0]["port"]
                self.assertEqual(f"dns:///{service}:{port}",
                                 gateway["upstreams"][service]["target"])
                # Headless, so the gateway balances over the pods itself.
                self.assertEqual("None", services[service]["spec"].get("clusterIP"))


if __name__ == "__main__":
    unittest.main()
