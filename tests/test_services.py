"""What every service gets in every stack, read from the objects the real program registers."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from components.labels import TIER_LABEL
from services import CATALOG, Dependency, Tier
from services.model import RedisUse, ServiceSpec
from tests.conftest import STACKS, stack_run
from tools.offline import StackRun
from tools.validate import rules_allow

SERVICE_NAMES = list(CATALOG)
RECOMMENDED = ("app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component",
               "app.kubernetes.io/managed-by", TIER_LABEL)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def pod_spec(run: StackRun, name: str) -> dict[str, Any]:
    return run.get("Deployment", name)["spec"]["template"]["spec"]


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return stack_run(request.param)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_has_its_objects_with_recommended_labels(run, name):
    spec = CATALOG[name]
    kinds = ["ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
             "NetworkPolicy", "ServiceMonitor"] + (["Ingress"] if spec.public else [])
    for kind in kinds:
        labels = run.get(kind, name)["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == name, kind
        assert labels["app.kubernetes.io/part-of"] == "codai" and labels["app.kubernetes.io/managed-by"] == "pulumi"
        assert labels[TIER_LABEL] == spec.tier.value, kind
    assert run.get("ConfigMap", f"{name}-config")["data"]["SERVICE_NAME"] == name
    if not spec.public:
        with pytest.raises(KeyError):
            run.get("Ingress", name)


def test_every_object_has_name_namespace_and_labels(run):
    namespace = run.outputs["namespace"]
    cluster_scoped = {"Namespace", "PriorityClass"}
    for obj in run.kubernetes_objects():
        meta = obj["metadata"]
        assert meta.get("name"), obj["kind"]
        if obj["kind"] not in cluster_scoped:
            assert meta.get("namespace") == namespace, (obj["kind"], meta["name"])
        missing = [label for label in RECOMMENDED if label not in meta.get("labels", {})]
        assert not missing, (obj["kind"], meta["name"], missing)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_selectors_match_their_pods_and_never_the_version(run, name):
    deployment = run.get("Deployment", name)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": run.get("Service", name)["spec"]["selector"],
        "PodDisruptionBudget": run.get("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"],
        "NetworkPolicy": run.get("NetworkPolicy", name)["spec"]["podSelector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert matches(selector, pod_labels), kind
        assert "app.kubernetes.io/version" not in selector, kind
    # No other service's pods are selected by this service's Service.
    others = [n for n in SERVICE_NAMES if n != name]
    assert not any(matches(selectors["Service"], run.get("Deployment", o)["spec"]["template"]["metadata"]["labels"])
                   for o in others)
    assert run.get("HorizontalPodAutoscaler", name)["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": name}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_container_is_pinned_sized_probed_and_restricted(run, name):
    spec = CATALOG[name]
    pod = pod_spec(run, name)
    [container] = pod["containers"]
    assert ":" in container["image"] and not container["image"].endswith(":latest")
    assert set(container["resources"]["requests"]) == {"cpu", "memory"} == set(container["resources"]["limits"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": spec.port, "metrics": spec.metrics_port}
    assert container["livenessProbe"]["httpGet"] == {"path": spec.health_path, "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": spec.health_path, "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": spec.ready_path, "port": "http"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsNonRoot"] is True
    assert security["runAsUser"] >= 10000 and pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == name
    # The read-only root filesystem still gets a writable /tmp.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    assert container["lifecycle"]["preStop"]
    assert pod["terminationGracePeriodSeconds"] == TERMINATION_GRACE_SECONDS[spec.tier]
    assert run.get("ServiceAccount", name)["automountServiceAccountToken"] is False


# What each tier means, written out (services/tiers.py must agree; it is not the expectation).
TERMINATION_GRACE_SECONDS = {Tier.CORE: 45, Tier.BUSINESS: 30, Tier.SUPPORT: 30}
MAX_SURGE = {Tier.CORE: "25%", Tier.BUSINESS: "25%", Tier.SUPPORT: "50%"}
PDB_MAX_UNAVAILABLE: dict[Tier, int | str] = {Tier.CORE: 1, Tier.BUSINESS: 1, Tier.SUPPORT: "50%"}
#: (interval, timeout) of the ServiceMonitor per tier.
SCRAPE = {Tier.CORE: ("15s", "10s"), Tier.BUSINESS: ("30s", "20s"), Tier.SUPPORT: ("60s", "30s")}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_rollout_is_zero_downtime_and_spread(run, name):
    spec = run.get("Deployment", name)["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": MAX_SURGE[CATALOG[name].tier]}}
    assert spec["minReadySeconds"] > 0
    keys = {c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert spec["template"]["spec"]["priorityClassName"].endswith(f"-{CATALOG[name].tier.value}")


# Expected HPA bounds per stack and tier, from the stack files and the sizing table.
HPA_BOUNDS = {
    "staging": {Tier.CORE: (2, 4), Tier.BUSINESS: (1, 3), Tier.SUPPORT: (1, 2)},
    "production": {Tier.CORE: (3, 15), Tier.BUSINESS: (2, 8), Tier.SUPPORT: (2, 4)},
}


@pytest.mark.parametrize("stack", sorted(HPA_BOUNDS))
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_hpa_bounds_per_tier_and_stack(stack, name):
    run = stack_run(stack)
    hpa = run.get("HorizontalPodAutoscaler", name)["spec"]
    low, high = HPA_BOUNDS[stack][CATALOG[name].tier]
    if stack == "production" and name == "logai":
        low = 4  # the production stack file raises logai's floor
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (low, high)
    assert {m["resource"]["name"] for m in hpa["metrics"]} == {"cpu", "memory"}
    assert run.get("Deployment", name)["spec"]["replicas"] == low
    # The disruption budget always lets a node drain, even with a single replica.
    pdb = run.get("PodDisruptionBudget", name)["spec"]
    assert pdb["maxUnavailable"] == PDB_MAX_UNAVAILABLE[CATALOG[name].tier] and "minAvailable" not in pdb


#: Requests and limits of every service container per stack and tier: the sizing profile's row
#: (`minimal` in staging, `highAvailability` in production), which neither stack file overrides.
RESOURCES = {
    "staging": {
        Tier.CORE: {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        Tier.BUSINESS: {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        Tier.SUPPORT: {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}},
    },
    "production": {
        Tier.CORE: {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        Tier.BUSINESS: {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        Tier.SUPPORT: {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    },
}
#: HPA targets in % of the request, the same in every tier and stack unless a stack file says otherwise.
HPA_TARGETS = {"cpu": 70, "memory": 80}


@pytest.mark.parametrize("stack", sorted(RESOURCES))
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_containers_are_sized_per_tier_and_stack(stack, name):
    run = stack_run(stack)
    [container] = run.get("Deployment", name)["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == RESOURCES[stack][CATALOG[name].tier]
    metrics = run.get("HorizontalPodAutoscaler", name)["spec"]["metrics"]
    assert {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in metrics} == HPA_TARGETS


def test_hpa_owns_replicas_after_creation(production):
    assert "spec.replicas" in production.resource("Deployment", "codai").ignore_changes


@pytest.mark.parametrize("name", [n for n in SERVICE_NAMES if CATALOG[n].public])
def test_public_services_get_tls_ingress_per_environment(run, name):
    ingress = run.get("Ingress", name)
    domain = {"staging": "staging.codai.dev", "production": "codai.dev"}.get(run.stack)
    host = ingress["spec"]["rules"][0]["host"]
    if domain:
        assert host == f"{name}.{domain}"
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": f"{name}-tls"}]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"].startswith("letsencrypt-")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": name, "port": {"name": "http"}}
    assert run.outputs["urls"][name] == f"https://{host}"


def test_staging_uses_the_staging_issuer(staging, production):
    assert staging.get("Ingress", "codai")["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == \
        "letsencrypt-staging"
    assert production.get("Ingress", "codai")["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == \
        "letsencrypt-production"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_service_monitor_scrapes_at_the_tier_interval(run, name):
    monitor = run.get("ServiceMonitor", name)
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == SCRAPE[CATALOG[name].tier]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service_ports = {p["name"] for p in run.get("Service", name)["spec"]["ports"]}
    assert "metrics" in service_ports
    assert matches(monitor["spec"]["selector"]["matchLabels"], run.get("Service", name)["metadata"]["labels"])


def test_scrape_intervals_are_15_30_60_by_tier(production):
    intervals = {CATALOG[m["metadata"]["name"]].tier: m["spec"]["endpoints"][0]["interval"]
                 for m in production.of_kind("ServiceMonitor") if m["metadata"]["name"] in CATALOG}
    assert intervals == {Tier.CORE: "15s", Tier.BUSINESS: "30s", Tier.SUPPORT: "60s"}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_network_policy_admits_declared_callers_and_nobody_else(run, name):
    policy = run.get("NetworkPolicy", name)["spec"]
    callers = set(CATALOG.callers_of(name))
    for other in SERVICE_NAMES:
        if other == name:
            continue
        other_labels = run.get("Deployment", other)["spec"]["template"]["metadata"]["labels"]
        admitted = rules_allow(policy["ingress"], "ingress", other_labels, "http")
        assert admitted == (other in callers), f"{other} -> {name}"
        # The caller's own egress must let the call out, on the callee's container port.
        if other in callers:
            egress = run.get("NetworkPolicy", other)["spec"]["egress"]
            labels = run.get("Deployment", name)["spec"]["template"]["metadata"]["labels"]
            assert rules_allow(egress, "egress", labels, CATALOG[name].port), f"{other} egress -> {name}"
    sources = [peer for rule in policy["ingress"] for peer in rule["from"] if "namespaceSelector" in peer]
    namespaces = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in sources}
    assert "monitoring" in namespaces
    assert ("ingress-nginx" in namespaces) == CATALOG[name].public


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_external_egress_only_where_declared(run, name):
    egress = run.get("NetworkPolicy", name)["spec"]["egress"]
    blocks = [peer["ipBlock"] for rule in egress for peer in rule.get("to", []) if "ipBlock" in peer]
    if CATALOG[name].external_egress:
        assert blocks and all("10.0.0.0/8" in block["except"] for block in blocks if block["cidr"] == "0.0.0.0/0")
    else:
        assert not [b for b in blocks if b["cidr"] == "0.0.0.0/0"]


def test_generated_secrets_come_from_random_and_are_redacted(run):
    for spec in CATALOG.values():
        if not spec.generated_secrets:
            continue
        secret = run.get("Secret", f"{spec.name}-app-secrets")
        assert sorted(secret["stringData"]) == sorted(spec.generated_secrets)
        assert set(secret["stringData"].values()) == {"<redacted>"}
        env_from = pod_spec(run, spec.name)["containers"][0]["envFrom"]
        assert {"secretRef": {"name": f"{spec.name}-app-secrets"}} in env_from
    passwords = [r for r in run.resources if r.type == "random:index/randomPassword:RandomPassword"]
    assert len(passwords) >= sum(len(s.generated_secrets) for s in CATALOG.values())


def test_config_checksum_follows_the_config(run):
    for name in SERVICE_NAMES:
        data = run.get("ConfigMap", f"{name}-config")["data"]
        annotations = run.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["checksum/config"] == hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def test_dependencies_declared_in_the_catalog_are_consistent():
    users = {d: {s.name for s in CATALOG.using(d)} for d in Dependency}
    assert "codai" in users[Dependency.POSTGRES] and "docs" not in users[Dependency.POSTGRES]
    assert CATALOG.callees_of("stocai") == ["logai", "wallet", "x"]


def test_every_redis_user_says_what_it_keeps_there():
    """The catalog states, per service, whether Redis holds state (which must persist) or caches."""
    kept = {spec.name: spec.redis_use for spec in CATALOG.values() if spec.redis_use}
    assert kept == {
        "codai": RedisUse.STATE, "logai": RedisUse.STATE, "bancai": RedisUse.STATE, "wallet": RedisUse.STATE,
        "cumparai": RedisUse.STATE, "x": RedisUse.STATE, "jucai": RedisUse.STATE, "stocai": RedisUse.STATE,
        "memorai": RedisUse.CACHE, "fabricai": RedisUse.CACHE, "studiai": RedisUse.CACHE,
        "sociai": RedisUse.CACHE, "publicai": RedisUse.CACHE, "aide": RedisUse.CACHE, "hub": RedisUse.CACHE,
    }
    assert set(kept) == {spec.name for spec in CATALOG.using(Dependency.REDIS)}


@pytest.mark.parametrize(("uses", "redis_use", "message"), [
    ((Dependency.REDIS,), None, "newai uses Redis: say what it keeps there, redis_use=RedisUse.CACHE or STATE"),
    ((Dependency.POSTGRES,), RedisUse.CACHE, "newai declares redis_use but does not use Redis"),
])
def test_a_catalog_entry_must_say_what_it_keeps_in_redis(uses, redis_use, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        ServiceSpec(name="newai", tier=Tier.SUPPORT, description="A new service", uses=uses, redis_use=redis_use)
