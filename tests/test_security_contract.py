"""The security contract (docs/security.md, "The contract"), one test per property.

Every expected value here is written out literally: nothing is read from the code under test
(tier policies, settings defaults, builders, the catalog), so weakening a property anywhere,
even in a table the code reads, fails a test. The objects are the ones the program renders for
each stack under Pulumi's mocks.

PostgreSQL runs in the cluster in both stacks, on CloudNativePG: a ``Cluster`` (its instances), one
``Database`` and one managed role per service, one ``Pooler`` (PgBouncer) per tier, base backups and
WAL to the object store. The operator makes the pods, Services, ServiceAccounts, Roles and
PodDisruptionBudgets of those objects; the contract pins what we render (the objects' specs, the
login Secrets, the NetworkPolicies of the operator's pods) and says below what it leaves to the
operator. An external (managed) PostgreSQL keeps the bootstrap Job and the dump CronJob: the tests
of roles, backups, job policies and pod templates also render each stack with one (``external_run``).
"""

from __future__ import annotations

import ast
import hashlib
import ipaddress
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, stack_run
from tools.offline import StackRun, run_stack, stack_config

BOTH = ("staging", "production")
NAMESPACE = {"staging": "codai-staging", "production": "codai"}
#: Production runs Redis replicated under Sentinel (3 servers, a sentinel beside each); staging one server.
REPLICATED_REDIS = {"staging": False, "production": True}
SENTINEL_PORT, SENTINEL_METRICS_PORT = 26379, 9355
DOMAIN = {"staging": "staging.codai.dev", "production": "codai.dev"}
ISSUER = {"staging": "letsencrypt-staging", "production": "letsencrypt-production"}
RBAC_GROUP = "rbac.authorization.k8s.io"

# --- the services, by tier ---------------------------------------------------------------------------------------

TIERS: dict[str, tuple[str, ...]] = {
    "core": ("codai", "logai", "memorai"),
    "business": ("bancai", "cumparai", "fabricai", "publicai", "sociai", "studiai", "wallet", "x"),
    "support": ("admin", "aide", "ajutai", "analizai", "dash", "docs", "explorer", "hub", "id", "jucai", "kodex",
                "legalizai", "marketai", "metu", "mod", "stocai", "templates", "tools"),
}
SERVICES = sorted(name for names in TIERS.values() for name in names)
#: Services reachable from the internet through the ingress controller (all but memorai and metu).
PUBLIC = ("admin", "aide", "ajutai", "analizai", "bancai", "codai", "cumparai", "dash", "docs", "explorer",
          "fabricai", "hub", "id", "jucai", "kodex", "legalizai", "logai", "marketai", "mod", "publicai", "sociai",
          "stocai", "studiai", "templates", "tools", "wallet", "x")
POSTGRES_CLIENTS = ("admin", "aide", "ajutai", "analizai", "bancai", "codai", "cumparai", "explorer", "fabricai",
                    "id", "jucai", "kodex", "legalizai", "logai", "marketai", "memorai", "metu", "mod", "sociai",
                    "stocai", "studiai", "wallet", "x")
#: Each tier's PostgreSQL clients, which its Pooler (and only its Pooler) admits.
POSTGRES_CLIENTS_BY_TIER = {
    "core": ("codai", "logai", "memorai"),
    "business": ("bancai", "cumparai", "fabricai", "sociai", "studiai", "wallet", "x"),
    "support": ("admin", "aide", "ajutai", "analizai", "explorer", "id", "jucai", "kodex", "legalizai", "marketai",
                "metu", "mod", "stocai"),
}
REDIS_CLIENTS = ("aide", "bancai", "codai", "cumparai", "fabricai", "hub", "jucai", "logai", "memorai", "publicai",
                 "sociai", "stocai", "studiai", "wallet", "x")

# --- a managed PostgreSQL --------------------------------------------------------------------------------------

#: Each stack with PostgreSQL managed elsewhere (backups to a volume, the default for an external server):
#: only the ``codai-platform:postgres`` key of the stack file changes.
EXTERNAL_POSTGRES = {"mode": "external", "external": {
    "host": "db.internal.example.com", "adminSecret": {"name": "pg-admin"}, "egressCidrs": ["10.20.0.0/16"]}}
EXTERNAL_POSTGRES_RULE = {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 5432}]}


@cache
def external_run(stack: str) -> StackRun:
    config, secrets = stack_config(stack)
    config["codai-platform:postgres"] = json.dumps(EXTERNAL_POSTGRES)
    return run_stack(stack, config=config, secret_keys=secrets)


# --- RBAC ----------------------------------------------------------------------------------------------------------

_CRUD = ["get", "list", "watch", "create", "update", "patch", "delete"]
_READ = ["get", "list", "watch"]
DEPLOYER_RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims"],
     "verbs": _CRUD},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": _CRUD},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _CRUD},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _CRUD},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _CRUD},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"], "verbs": _CRUD},
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules", "alertmanagerconfigs"],
     "verbs": _CRUD},
    # The CloudNativePG objects we declare; never their Backups (records the ScheduledBackup owns).
    {"apiGroups": ["postgresql.cnpg.io"], "resources": ["clusters", "poolers", "databases", "scheduledbackups"],
     "verbs": _CRUD},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "events", "endpoints"], "verbs": _READ},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": _READ},
]
VIEWER_RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "services", "endpoints", "pods", "pods/log", "events",
                                      "serviceaccounts", "persistentvolumeclaims", "resourcequotas", "limitranges"],
     "verbs": _READ},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"], "verbs": _READ},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _READ},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"], "verbs": _READ},
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules", "alertmanagerconfigs"],
     "verbs": _READ},
    {"apiGroups": ["postgresql.cnpg.io"], "resources": ["clusters", "poolers", "databases", "scheduledbackups",
                                                        "backups"], "verbs": _READ},
]
#: (apiGroup, resource) only a cluster administrator may change: RBAC, the namespace, priorities, quota, and
#: the pod sub-resources that hand out a shell, a token or a port.
ADMINISTERED = [
    ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "clusterroles"), ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("", "namespaces"), ("scheduling.k8s.io", "priorityclasses"), ("", "resourcequotas"), ("", "limitranges"),
    ("", "pods"), ("", "pods/exec"), ("", "pods/attach"), ("", "pods/portforward"), ("", "pods/ephemeralcontainers"),
    ("", "serviceaccounts/token"), ("", "nodes"), ("", "persistentvolumes"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("apiextensions.k8s.io", "customresourcedefinitions"), ("certificates.k8s.io", "certificatesigningrequests"),
]
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
ESCALATION_VERBS = {"escalate", "bind", "impersonate", "*"}


def _roles(run: Any) -> dict[str, list[dict[str, Any]]]:
    return {role["metadata"]["name"]: role["rules"] for role in run.of_kind("Role")}


def _verbs(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {verb for rule in rules if group in rule["apiGroups"] or "*" in rule["apiGroups"]
            if resource in rule["resources"] or "*" in rule["resources"] for verb in rule["verbs"]}


@pytest.mark.parametrize("stack", BOTH)
def test_deployer_role_grants_exactly(stack):
    run = stack_run(stack)
    role = run.get("Role", "codai-deployer")
    assert role["metadata"]["namespace"] == NAMESPACE[stack]
    assert role["rules"] == DEPLOYER_RULES


@pytest.mark.parametrize("stack", BOTH)
def test_viewer_role_grants_exactly_and_no_secrets(stack):
    run = stack_run(stack)
    role = run.get("Role", "codai-viewer")
    assert role["metadata"]["namespace"] == NAMESPACE[stack]
    assert role["rules"] == VIEWER_RULES
    assert _verbs(role["rules"], "", "secrets") == set()
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"get", "list", "watch"}


@pytest.mark.parametrize("stack", BOTH)
def test_only_these_roles_and_bindings_exist_with_these_subjects(stack):
    run = stack_run(stack)
    kinds = {obj["kind"] for obj in run.kubernetes_objects()}
    assert kinds.isdisjoint({"ClusterRole", "ClusterRoleBinding"})
    assert sorted(_roles(run)) == ["codai-deployer", "codai-viewer"]
    bindings = {b["metadata"]["name"]: (b["roleRef"], b["subjects"]) for b in run.of_kind("RoleBinding")}
    assert bindings == {
        "codai-deployer": ({"apiGroup": RBAC_GROUP, "kind": "Role", "name": "codai-deployer"},
                           [{"kind": "Group", "name": "codai:deployers", "apiGroup": RBAC_GROUP}]),
        "codai-viewer": ({"apiGroup": RBAC_GROUP, "kind": "Role", "name": "codai-viewer"},
                         [{"kind": "Group", "name": "codai:viewers", "apiGroup": RBAC_GROUP}]),
    }
    assert {b["metadata"]["namespace"] for b in run.of_kind("RoleBinding")} == {NAMESPACE[stack]}


@pytest.mark.parametrize("stack", BOTH)
def test_deployer_cannot_write_administrator_kinds(stack):
    deployer = _roles(stack_run(stack))["codai-deployer"]
    for group, resource in ADMINISTERED:
        assert _verbs(deployer, group, resource) & WRITE_VERBS == set(), (group, resource)
    # Roles and bindings are neither written nor even read by CI.
    for resource in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"):
        assert _verbs(deployer, RBAC_GROUP, resource) == set(), resource


@pytest.mark.parametrize("stack", BOTH)
def test_no_role_can_escalate_or_use_wildcards(stack):
    for name, rules in _roles(stack_run(stack)).items():
        for rule in rules:
            assert "*" not in rule["apiGroups"] and "*" not in rule["resources"], (name, rule)
            assert set(rule["verbs"]) & ESCALATION_VERBS == set(), (name, rule)
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule, (name, rule)
        for resource in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"):
            assert _verbs(rules, RBAC_GROUP, resource) & {"create", "update", "patch", "bind", "escalate"} == set()
        for group, resource in (("", "users"), ("", "groups"), ("", "serviceaccounts")):
            assert "impersonate" not in _verbs(rules, group, resource), (name, resource)


# --- network: egress ---------------------------------------------------------------------------------------------

#: What each service may open connections to besides DNS: peers (service -> container port),
#: data servers ("postgres": its tier's PgBouncers, never the PostgreSQL instances), and HTTPS to public addresses.
EGRESS: dict[str, tuple[dict[str, int], tuple[str, ...], bool]] = {
    "admin": ({"codai": 3000, "id": 8080, "logai": 4000, "metu": 8080}, ("postgres",), False),
    "aide": ({"codai": 3000, "fabricai": 8080, "kodex": 8080, "logai": 4000, "memorai": 8080},
             ("postgres", "redis"), False),
    "ajutai": ({"fabricai": 8080, "logai": 4000, "memorai": 8080}, ("postgres",), False),
    "analizai": ({"logai": 4000, "memorai": 8080, "metu": 8080}, ("postgres",), False),
    "bancai": ({"logai": 4000, "wallet": 8080}, ("postgres", "redis"), True),
    "codai": ({"fabricai": 8080, "kodex": 8080, "logai": 4000, "memorai": 8080}, ("postgres", "redis"), False),
    "cumparai": ({"bancai": 8080, "logai": 4000, "wallet": 8080}, ("postgres", "redis"), False),
    "dash": ({"analizai": 8080, "codai": 3000, "logai": 4000, "metu": 8080}, (), False),
    "docs": ({"logai": 4000}, (), False),
    "explorer": ({"logai": 4000}, ("postgres",), False),
    "fabricai": ({"logai": 4000, "memorai": 8080}, ("postgres", "redis"), True),
    "hub": ({"codai": 3000, "logai": 4000}, ("redis",), False),
    "id": ({"logai": 4000}, ("postgres",), False),
    "jucai": ({"logai": 4000}, ("postgres", "redis"), False),
    "kodex": ({"logai": 4000}, ("postgres",), False),
    "legalizai": ({"fabricai": 8080, "logai": 4000}, ("postgres",), False),
    "logai": ({"id": 8080}, ("postgres", "redis"), False),
    "marketai": ({"fabricai": 8080, "logai": 4000}, ("postgres",), False),
    "memorai": ({"logai": 4000}, ("postgres", "redis"), False),
    "metu": ({"analizai": 8080, "logai": 4000}, ("postgres",), False),
    "mod": ({"logai": 4000}, ("postgres",), False),
    "publicai": ({"fabricai": 8080, "logai": 4000}, ("redis",), False),
    "sociai": ({"fabricai": 8080, "logai": 4000, "memorai": 8080}, ("postgres", "redis"), False),
    "stocai": ({"logai": 4000, "wallet": 8080, "x": 8080}, ("postgres", "redis"), True),
    "studiai": ({"fabricai": 8080, "logai": 4000, "memorai": 8080}, ("postgres", "redis"), False),
    "templates": ({"logai": 4000}, (), False),
    "tools": ({"logai": 4000}, (), False),
    "wallet": ({"bancai": 8080, "logai": 4000}, ("postgres", "redis"), False),
    "x": ({"bancai": 8080, "logai": 4000, "wallet": 8080}, ("postgres", "redis"), True),
}
DNS_RULE = {
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
REDIS_RULE = {"to": [{"podSelector": {"matchLabels": {
    "app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "redis",
    "app.kubernetes.io/part-of": "codai", "app.kubernetes.io/component": "cache"}}}],
    "ports": [{"protocol": "TCP", "port": 6379}]}

# --- CloudNativePG: the labels the operator puts on its pods, and what we name ----------------------------------

CLUSTER = "postgres-cluster"
#: The PostgreSQL instances (the operator's labels: which Cluster, which role in it).
INSTANCES = {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "instance"}
#: Every PgBouncer of the Cluster, whatever its tier.
EVERY_POOLER = {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "pooler"}
#: The Cluster's pods that are not PgBouncers: the instances and the operator's jobs that make them (initdb, join).
CLUSTER_PODS = {"matchLabels": {"cnpg.io/cluster": CLUSTER},
                "matchExpressions": [{"key": "cnpg.io/podRole", "operator": "NotIn", "values": ["pooler"]}]}
OPERATOR_NAMESPACE = "cnpg-system"


def pooler(tier: str) -> str:
    """A tier's Pooler, its PgBouncer pods' ``cnpg.io/poolerName`` and the Service its clients connect to."""
    return f"postgres-pooler-{tier}"


def tier_of(service: str) -> str:
    [tier] = [tier for tier, names in TIERS.items() if service in names]
    return tier


def data_rule(server: str, stack: str, service: str) -> dict[str, Any]:
    """A client's egress to a data server: PostgreSQL through its tier's PgBouncers only; a replicated
    Redis's clients also reach its sentinels."""
    if server == "postgres":
        return {"to": [{"podSelector": {"matchLabels": {"cnpg.io/poolerName": pooler(tier_of(service))}}}],
                "ports": [{"protocol": "TCP", "port": 5432}]}
    if REPLICATED_REDIS[stack]:
        return {**REDIS_RULE, "ports": [{"protocol": "TCP", "port": 6379}, {"protocol": "TCP", "port": SENTINEL_PORT}]}
    return REDIS_RULE

#: What "HTTPS to the internet" leaves out: RFC 1918, link-local (the cloud metadata address
#: 169.254.169.254 included), carrier-grade NAT (RFC 6598), "this network", loopback, multicast and reserved.
PUBLIC_HTTPS_EXCEPT = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
                       "0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"]
PUBLIC_HTTPS_RULE = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PUBLIC_HTTPS_EXCEPT}}],
                     "ports": [{"protocol": "TCP", "port": 443}]}
#: The Kubernetes API server, for the operator's pods (the instance manager and PgBouncer's watch their objects):
#: its ports only, at any address, as neither stack sets environment.kubernetes.apiServerCidrs. The API server
#: sits at a private address, so this rule cannot leave out the private ranges as PUBLIC_HTTPS_RULE does.
API_SERVER_RULE = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                   "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}


def _peer_rule(service: str, port: int) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": service, "app.kubernetes.io/instance": service,
              "app.kubernetes.io/part-of": "codai"}
    return {"to": [{"podSelector": {"matchLabels": labels}}], "ports": [{"protocol": "TCP", "port": port}]}


def _service_policies(run: Any) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p["spec"] for p in run.of_kind("NetworkPolicy")
            if p["metadata"]["labels"]["app.kubernetes.io/component"] == "app"}


@pytest.mark.parametrize("stack", BOTH)
def test_every_service_egress_is_exactly(stack):
    policies = _service_policies(stack_run(stack))
    assert sorted(policies) == SERVICES == sorted(EGRESS)
    assert sorted(name for name, (_, data, _) in EGRESS.items() if "postgres" in data) == list(POSTGRES_CLIENTS)
    assert sorted(sum(POSTGRES_CLIENTS_BY_TIER.values(), ())) == list(POSTGRES_CLIENTS)
    for tier, clients in POSTGRES_CLIENTS_BY_TIER.items():
        assert all(tier_of(client) == tier for client in clients), tier
    for name, (peers, data, https) in EGRESS.items():
        expected = [DNS_RULE, *(_peer_rule(peer, port) for peer, port in sorted(peers.items())),
                    *(data_rule(server, stack, name) for server in data), *([PUBLIC_HTTPS_RULE] if https else [])]
        assert policies[name]["egress"] == expected, name
        assert policies[name]["policyTypes"] == ["Ingress", "Egress"], name
        # A service never reaches the PostgreSQL instances themselves, only its tier's PgBouncers.
        selectors = [peer.get("podSelector", {}) for rule in policies[name]["egress"] for peer in rule["to"]]
        assert not any("cnpg.io/cluster" in selector.get("matchLabels", {}) for selector in selectors), name
    # A managed server: the clients reach its address range on its port instead.
    external = _service_policies(external_run(stack))
    for name in POSTGRES_CLIENTS:
        rules = external[name]["egress"]
        assert EXTERNAL_POSTGRES_RULE in rules, name
        assert data_rule("postgres", stack, name) not in rules, name


@pytest.mark.parametrize("stack", BOTH)
def test_public_https_except_list_is_exactly(stack):
    ranges = [(policy["metadata"]["name"], rule) for policy in stack_run(stack).of_kind("NetworkPolicy")
              for rule in policy["spec"].get("egress", []) if any("ipBlock" in peer for peer in rule["to"])]
    # Public HTTPS: the four services that declare it, and the PostgreSQL instances (the object store they
    # archive to); the API server: the instances and each tier's PgBouncers. Nothing else leaves by address.
    assert sorted(ranges, key=lambda item: (item[0], json.dumps(item[1], sort_keys=True))) == sorted([
        *((name, PUBLIC_HTTPS_RULE) for name in ("bancai", "fabricai", "stocai", "x", "postgres")),
        *((name, API_SERVER_RULE) for name in ("postgres", *(pooler(tier) for tier in TIERS))),
    ], key=lambda item: (item[0], json.dumps(item[1], sort_keys=True)))
    blocks = [peer["ipBlock"] for _, rule in ranges for peer in rule["to"] if "except" in peer["ipBlock"]]
    assert len(blocks) == 5
    for block in blocks:
        assert block == {"cidr": "0.0.0.0/0", "except": PUBLIC_HTTPS_EXCEPT}
        excluded = [ipaddress.ip_network(cidr) for cidr in block["except"]]
        for address in ("169.254.169.254", "10.96.0.1", "172.17.0.1", "192.168.1.1", "100.100.100.200"):
            assert any(ipaddress.ip_address(address) in net for net in excluded), address


#: Services allowed to call each service on its http port ("*": every other service).
CALLERS: dict[str, tuple[str, ...] | str] = {
    "analizai": ("dash", "metu"), "bancai": ("cumparai", "wallet", "x"), "codai": ("admin", "aide", "dash", "hub"),
    "fabricai": ("aide", "ajutai", "codai", "legalizai", "marketai", "publicai", "sociai", "studiai"),
    "id": ("admin", "logai"), "kodex": ("aide", "codai"), "logai": "*",
    "memorai": ("aide", "ajutai", "analizai", "codai", "fabricai", "sociai", "studiai"),
    "metu": ("admin", "analizai", "dash"), "wallet": ("bancai", "cumparai", "stocai", "x"), "x": ("stocai",),
}
PROMETHEUS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                   "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
INGRESS_CONTROLLER_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}


@pytest.mark.parametrize("stack", BOTH)
def test_every_service_ingress_is_exactly(stack):
    policies = _service_policies(stack_run(stack))
    for name in SERVICES:
        expected = [{"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": "metrics"}]}]
        if name in PUBLIC:
            expected.append({"from": [INGRESS_CONTROLLER_PEER], "ports": [{"protocol": "TCP", "port": "http"}]})
        callers = CALLERS.get(name, ())
        if callers == "*":
            callers = tuple(other for other in SERVICES if other != name)
        if callers:
            expected.append({"from": [{"podSelector": {"matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "In", "values": list(callers)}]}}],
                "ports": [{"protocol": "TCP", "port": "http"}]})
        assert policies[name]["ingress"] == expected, name


@pytest.mark.parametrize("stack", BOTH)
def test_only_prometheus_in_monitoring_scrapes_metrics(stack):
    run = stack_run(stack)
    # Services' `metrics`, the PostgreSQL instances' 9187, PgBouncers' 9127, Redis's 9121, Sentinel's 9355.
    metrics_ports = {"metrics", 9187, 9127, 9121, SENTINEL_METRICS_PORT}
    for policy in run.of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            ports = {port["port"] for port in rule["ports"]}
            if ports & metrics_ports:
                assert rule["from"] == [PROMETHEUS_PEER], policy["metadata"]["name"]
                assert len(rule["ports"]) == 1 and rule["ports"][0]["protocol"] == "TCP", policy["metadata"]["name"]
            if PROMETHEUS_PEER in rule["from"]:
                assert ports <= metrics_ports, policy["metadata"]["name"]
    scraped = [("postgres", 9187), *((pooler(tier), 9127) for tier in TIERS), ("redis", 9121),
               *([("redis", SENTINEL_METRICS_PORT)] * REPLICATED_REDIS[stack])]
    for server, port in scraped:
        assert {"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": port}]} in \
            run.get("NetworkPolicy", server)["spec"]["ingress"]


#: Every namespace a NetworkPolicy lets traffic come from or go to, with the pods and ports admitted: the
#: CloudNativePG operator (any pod of its namespace) calls the instances' status endpoint, 8000, and nothing else.
NAMESPACE_PEERS = {
    ("egress", "kube-system"): ({"k8s-app": "kube-dns"}, {("UDP", 53), ("TCP", 53)}),
    ("ingress", "monitoring"): ({"app.kubernetes.io/name": "prometheus"}, {("TCP", "metrics"), ("TCP", 9187),
                                                                          ("TCP", 9127), ("TCP", 9121),
                                                                          ("TCP", 9355)}),
    ("ingress", "ingress-nginx"): (None, {("TCP", "http")}),
    ("ingress", OPERATOR_NAMESPACE): (None, {("TCP", 8000)}),
}
#: Where each namespace is admitted: (direction, namespace) -> the policies that name it.
NAMESPACE_PEER_POLICIES = {
    ("egress", "kube-system"): sorted(["allow-dns-egress", *SERVICES]),
    ("ingress", "monitoring"): sorted([*SERVICES, "postgres", *(pooler(tier) for tier in TIERS), "redis"]),
    ("ingress", "ingress-nginx"): sorted(PUBLIC),
    ("ingress", OPERATOR_NAMESPACE): ["postgres"],
}


@pytest.mark.parametrize("stack", BOTH)
def test_no_rule_admits_another_namespace_but_these(stack):
    policies = stack_run(stack).of_kind("NetworkPolicy")
    # 29 services, default deny, DNS, PostgreSQL's instances, its 3 Poolers, Redis.
    assert len(policies) == 36
    seen: dict[tuple[str, str], set[str]] = {}
    for policy in policies:
        name = policy["metadata"]["name"]
        for direction, peers_key in (("egress", "to"), ("ingress", "from")):
            for rule in policy["spec"].get(direction, []):
                assert rule.get(peers_key) and rule.get("ports"), (name, rule)  # never "every source/port"
                for peer in rule[peers_key]:
                    assert set(peer) <= {"podSelector", "namespaceSelector", "ipBlock"}, (name, peer)
                    if "namespaceSelector" not in peer:
                        continue
                    namespace = peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    assert namespace is not None, (name, peer)  # never "every namespace"
                    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                    assert (direction, namespace) in NAMESPACE_PEERS, (name, peer)
                    pods, ports = NAMESPACE_PEERS[(direction, namespace)]
                    assert peer.get("podSelector") == (pods and {"matchLabels": pods}), (name, peer)
                    assert {(p["protocol"], p["port"]) for p in rule["ports"]} <= ports, (name, rule)
                    seen.setdefault((direction, namespace), set()).add(name)
    assert {key: sorted(names) for key, names in seen.items()} == NAMESPACE_PEER_POLICIES


@pytest.mark.parametrize("stack", BOTH)
def test_default_deny_and_dns_policies_are_exactly(stack):
    run = stack_run(stack)
    assert run.get("NetworkPolicy", "default-deny-all")["spec"] == {"podSelector": {},
                                                                    "policyTypes": ["Ingress", "Egress"]}
    assert run.get("NetworkPolicy", "allow-dns-egress")["spec"] == {
        "podSelector": {}, "policyTypes": ["Egress"], "egress": [DNS_RULE]}


def _selector_of(name: str, component: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
                            "app.kubernetes.io/part-of": "codai", "app.kubernetes.io/component": component}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


@pytest.mark.parametrize("stack", BOTH)
def test_data_server_and_job_policies_are_exactly(stack):
    """PostgreSQL's instances and PgBouncers (CloudNativePG's pods), Redis, and an external server's jobs.

    The instances take 5432 from the Cluster's other pods (replication, the operator's jobs) and the
    PgBouncers only, 8000 (the instance manager's status) from the Cluster's pods and the operator's
    namespace only, 9187 from Prometheus only; they reach each other (5432, 8000), the API server and
    the object store (public 443). A tier's PgBouncers take 5432 from that tier's clients only, 9127 from
    Prometheus only; they reach the instances on 5432 and the API server, nothing else.
    """
    run = stack_run(stack)

    def clients(names: tuple[str, ...]) -> dict[str, Any]:
        return {"podSelector": {"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": list(names)}]}}

    cluster_pods = {"podSelector": CLUSTER_PODS}
    assert run.get("NetworkPolicy", "postgres")["spec"] == {
        "podSelector": CLUSTER_PODS, "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"from": [cluster_pods, {"podSelector": {"matchLabels": EVERY_POOLER}}], "ports": _tcp(5432)},
            {"from": [cluster_pods, {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": OPERATOR_NAMESPACE}}}], "ports": _tcp(8000)},
            {"from": [PROMETHEUS_PEER], "ports": _tcp(9187)}],
        "egress": [{"to": [cluster_pods], "ports": _tcp(5432, 8000)}, API_SERVER_RULE, PUBLIC_HTTPS_RULE]}
    for tier, names in POSTGRES_CLIENTS_BY_TIER.items():
        assert run.get("NetworkPolicy", pooler(tier))["spec"] == {
            "podSelector": {"matchLabels": {"cnpg.io/poolerName": pooler(tier)}}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [clients(names)], "ports": _tcp(5432)},
                        {"from": [PROMETHEUS_PEER], "ports": _tcp(9127)}],
            "egress": [{"to": [{"podSelector": {"matchLabels": INSTANCES}}], "ports": _tcp(5432)},
                       API_SERVER_RULE]}, tier
    postgres_policies = sorted(p["metadata"]["name"] for p in run.of_kind("NetworkPolicy")
                               if p["metadata"]["labels"]["app.kubernetes.io/name"] == "postgres")
    assert postgres_policies == ["postgres", *sorted(pooler(tier) for tier in TIERS)]
    redis = {"podSelector": _selector_of("redis", "cache"), "policyTypes": ["Ingress", "Egress"],
             "ingress": [{"from": [clients(REDIS_CLIENTS)], "ports": [{"protocol": "TCP", "port": 6379}]},
                         {"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": 9121}]}]}
    if REPLICATED_REDIS[stack]:
        # The servers and their sentinels reach each other, and nothing else; clients also ask the sentinels.
        peers = [{"podSelector": _selector_of("redis", "cache")}]
        both = [{"protocol": "TCP", "port": 6379}, {"protocol": "TCP", "port": SENTINEL_PORT}]
        redis["ingress"] = [{"from": [clients(REDIS_CLIENTS)], "ports": both},
                            {"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": 9121}]},
                            {"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": SENTINEL_METRICS_PORT}]},
                            {"from": peers, "ports": both}]
        redis["egress"] = [{"to": peers, "ports": both}]
    assert run.get("NetworkPolicy", "redis")["spec"] == redis
    # A managed server: its bootstrap and backup jobs reach only its address range on 5432, and take nothing.
    external = external_run(stack)
    jobs = {p["metadata"]["name"]: p["spec"] for p in external.of_kind("NetworkPolicy")
            if p["metadata"]["labels"]["app.kubernetes.io/name"] == "postgres"}
    assert jobs == {f"postgres-{job}": {"podSelector": _selector_of("postgres", job),
                                        "policyTypes": ["Ingress", "Egress"], "egress": [EXTERNAL_POSTGRES_RULE]}
                    for job in ("bootstrap", "backup")}


# --- ingress --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", BOTH)
def test_ingresses_are_exactly_the_public_services_with_forced_tls(stack):
    run = stack_run(stack)
    ingresses = {obj["metadata"]["name"]: obj for obj in run.of_kind("Ingress")}
    assert sorted(ingresses) == list(PUBLIC)
    for name, ingress in ingresses.items():
        host = f"{name}.{DOMAIN[stack]}"
        assert ingress["metadata"]["annotations"] == {
            "cert-manager.io/cluster-issuer": ISSUER[stack],
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
        }, name
        assert ingress["spec"] == {
            "ingressClassName": "nginx",
            "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": name, "port": {"name": "http"}}}}]}}],
        }, name
    # Nothing else reaches the cluster from outside: no NodePort, LoadBalancer or external IP.
    for service in run.of_kind("Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
        assert "externalIPs" not in service["spec"], service["metadata"]["name"]


# --- generated secrets -------------------------------------------------------------------------------------------

#: Letters and digits only (pulumi-random's upper, lower and numeric on, special off, no minimums).
ALPHANUMERIC = {"special": False}
APP_SECRETS = {"bancai-ledger-encryption-key": 48, "logai-jwt-signing-key": 48, "logai-session-secret": 48,
               "memorai-memory-encryption-key": 48, "wallet-wallet-encryption-key": 48}
#: No administrator or monitor password any more: CloudNativePG's superuser access is off, and its
#: instance manager exports the metrics itself.
DATA_PASSWORDS = {
    **{f"postgres-client-{name}-password": 32 for name in POSTGRES_CLIENTS},
    **{f"redis-client-{name}-password": 32 for name in REDIS_CLIENTS},
    "redis-exporter-password": 32, "redis-healthcheck-password": 32,
}


def _mocked_password(resource: str, length: int) -> str:
    """What the mocks answer for the RandomPassword ``resource`` (tools/offline.py): a value of its own, per name."""
    return hashlib.sha256(resource.encode()).hexdigest()[:length]


def _unredacted_secrets(run: StackRun) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in run.kubernetes_objects(redact=False) if obj["kind"] == "Secret"}


@pytest.mark.parametrize("stack", BOTH)
def test_every_generated_password_has_exactly_this_strength(stack):
    run = stack_run(stack)
    passwords = {r.name: r.inputs for r in run.resources if r.type == "random:index/randomPassword:RandomPassword"}
    # A replicated Redis adds the logins of its replicas and of its sentinels.
    replication = {"redis-replication-password": 32, "redis-sentinel-password": 32} if REPLICATED_REDIS[stack] else {}
    expected = {**APP_SECRETS, **DATA_PASSWORDS, **replication}
    assert len(expected) == {"staging": 45, "production": 47}[stack]
    assert sorted(passwords) == sorted(expected)
    for name, length in expected.items():
        assert passwords[name] == {"length": length, **ALPHANUMERIC}, name
    assert {r.type for r in run.resources if r.type.startswith("random:")} == {
        "random:index/randomPassword:RandomPassword"}
    # The password a service's role logs in with (its login Secret, which CloudNativePG reads) and the one
    # it connects with (its own Secret) are both its generated 32-character password above, none other.
    secrets = _unredacted_secrets(run)
    for name in POSTGRES_CLIENTS:
        generated = _mocked_password(f"postgres-client-{name}-password", 32)
        assert secrets[f"{name}-postgres-login"]["stringData"]["password"] == generated, name
        assert secrets[f"{name}-postgres"]["stringData"]["PGPASSWORD"] == generated, name
        assert re.fullmatch(r"[A-Za-z0-9]{32}", generated), name


@pytest.mark.parametrize("stack", BOTH)
def test_secrets_are_exactly_these_opaque_ones(stack):
    """Exactly these Secrets: Opaque, but each service's login for CloudNativePG, ``kubernetes.io/basic-auth``.

    A PostgreSQL client's Secret sends it to its tier's Pooler Service with TLS required; its login Secret
    holds its role and the same password, labelled for the operator to reload a rotated password.
    """
    run = stack_run(stack)
    secrets = {obj["metadata"]["name"]: obj for obj in run.of_kind("Secret")}
    logins = {f"{name}-postgres-login" for name in POSTGRES_CLIENTS}
    expected = {
        *(f"{name}-postgres" for name in POSTGRES_CLIENTS), *logins, *(f"{name}-redis" for name in REDIS_CLIENTS),
        "bancai-app-secrets", "logai-app-secrets", "memorai-app-secrets", "wallet-app-secrets",
        "redis-users", *(["redis-replication"] * REPLICATED_REDIS[stack]),
    }
    assert len(expected) == {"staging": 66, "production": 67}[stack]
    assert sorted(secrets) == sorted(expected)
    for name, secret in secrets.items():
        # Never a service-account-token Secret.
        assert secret["type"] == ("kubernetes.io/basic-auth" if name in logins else "Opaque"), name
        assert set(secret["stringData"].values()) == {"<redacted>"}, name
        assert ("cnpg.io/reload" in secret["metadata"]["labels"]) == (name in logins), name
    values = _unredacted_secrets(run)
    for name in POSTGRES_CLIENTS:
        login = values[f"{name}-postgres-login"]
        assert login["metadata"]["labels"]["cnpg.io/reload"] == "true", name
        password = values[f"{name}-postgres"]["stringData"]["PGPASSWORD"]
        assert login["stringData"] == {"username": name, "password": password}, name
        host = f"{pooler(tier_of(name))}.{NAMESPACE[stack]}.svc"
        assert values[f"{name}-postgres"]["stringData"] == {
            "DATABASE_URL": f"postgresql://{name}:{password}@{host}:5432/{name}?sslmode=require",
            "PGHOST": host, "PGPORT": "5432", "PGDATABASE": name, "PGUSER": name, "PGPASSWORD": password,
            "PGSSLMODE": "require"}, name
    assert len({values[f"{name}-postgres"]["stringData"]["PGPASSWORD"] for name in POSTGRES_CLIENTS}) == 23


@pytest.mark.parametrize("stack", BOTH)
def test_service_accounts_carry_no_api_token(stack):
    """Ours carry no token. CloudNativePG makes and binds the ServiceAccounts of its own pods (the Cluster's,
    each Pooler's), whose instance managers call the API server: the operator's, not rendered here."""
    accounts = {sa["metadata"]["name"]: sa for sa in stack_run(stack).of_kind("ServiceAccount")}
    assert sorted(accounts) == sorted([*SERVICES, "redis"])
    # A managed server's bootstrap and backup jobs run as `postgres`.
    external = {sa["metadata"]["name"]: sa for sa in external_run(stack).of_kind("ServiceAccount")}
    assert sorted(external) == sorted([*SERVICES, "postgres", "redis"])
    for name, account in [*accounts.items(), *external.items()]:
        assert account["automountServiceAccountToken"] is False, name
        assert "secrets" not in account and "imagePullSecrets" not in account, name


# --- pod security ------------------------------------------------------------------------------------------------

POD_SECURITY_CONTEXT = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"}}
#: StatefulSets also skip re-owning their volume on every start.
STATEFUL_POD_SECURITY_CONTEXT = {**POD_SECURITY_CONTEXT, "fsGroupChangePolicy": "OnRootMismatch"}
CONTAINER_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
    "runAsUser": 10001, "runAsGroup": 10001, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
ALLOWED_VOLUMES = {"emptyDir", "configMap", "secret", "projected", "persistentVolumeClaim", "ephemeral"}


def _pod_templates(run: Any) -> list[tuple[str, str, dict[str, Any]]]:
    templates = [(obj["kind"], obj["metadata"]["name"], obj["spec"]["template"]["spec"])
                 for kind in ("Deployment", "StatefulSet", "Job") for obj in run.of_kind(kind)]
    templates += [(obj["kind"], obj["metadata"]["name"], obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
                  for obj in run.of_kind("CronJob")]
    return templates


#: The platform's labels, the only thing we add to the pods (and Services, claims) CloudNativePG makes.
OPERATOR_POD_LABELS = {"app.kubernetes.io/part-of": "codai", "codai.io/tier": "data"}
#: Every field of our Cluster's spec. None of CloudNativePG's pod-level knobs (podSecurityContext,
#: securityContext, seccompProfile, serviceAccountTemplate, projectedVolumeTemplate, env, envFrom,
#: postgresUID/GID, enablePDB, certificates, bootstrap...) is set: the operator's defaults hold.
CLUSTER_SPEC_FIELDS = ["affinity", "backup", "enableSuperuserAccess", "imageName", "inheritedMetadata", "instances",
                       "managed", "postgresql", "primaryUpdateMethod", "primaryUpdateStrategy", "priorityClassName",
                       "resources", "storage", "topologySpreadConstraints"]


@pytest.mark.parametrize("stack", BOTH)
def test_every_pod_template_is_restricted(stack):
    """Every pod template we render is restricted; the pods CloudNativePG makes are the operator's.

    Ours: 29 Deployments and Redis's StatefulSet; with a managed PostgreSQL also its bootstrap Job and
    dump CronJob. CloudNativePG makes the PostgreSQL instances' pods (and their initdb/join jobs) from
    the Cluster and the PgBouncers' from each Pooler's template. The operator runs them non-root with a
    read-only root filesystem, no privilege escalation, every capability dropped and RuntimeDefault
    seccomp; they mount an API token of the operator's ServiceAccount (their instance managers watch
    their objects). The contract does not restate the operator's hardening; it pins that we change none
    of it: the Cluster sets none of its pod-level fields (``CLUSTER_SPEC_FIELDS``), and each Pooler's
    template adds only labels, placement (priority class, spread) and the `pgbouncer` container's
    resources. The namespace enforces Pod Security `restricted` (the next test), which refuses any pod
    of the operator's that would not be.
    """
    run = stack_run(stack)
    templates = _pod_templates(run)
    assert sorted(kind for kind, _, _ in templates) == [*["Deployment"] * 29, "StatefulSet"]
    assert [name for kind, name, _ in templates if kind == "StatefulSet"] == ["redis"]
    external_jobs = [(kind, name, pod) for kind, name, pod in _pod_templates(external_run(stack))
                     if kind in ("Job", "CronJob")]
    assert sorted((kind, re.sub(r"-[0-9a-f]{10}$", "", name)) for kind, name, _ in external_jobs) == [
        ("CronJob", "postgres-backup"), ("Job", "postgres-bootstrap")]
    assert {obj["kind"] for obj in run.kubernetes_objects()}.isdisjoint({"DaemonSet", "Pod", "ReplicaSet"})
    for kind, name, pod in [*templates, *external_jobs]:
        expected = STATEFUL_POD_SECURITY_CONTEXT if kind == "StatefulSet" else POD_SECURITY_CONTEXT
        assert pod["securityContext"] == expected, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] not in ("", "default"), name
        for host_field in ("hostNetwork", "hostPID", "hostIPC", "hostUsers", "shareProcessNamespace"):
            assert host_field not in pod, (name, host_field)
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= ALLOWED_VOLUMES, (name, volume)
        containers = [*pod.get("initContainers", []), *pod["containers"]]
        assert "ephemeralContainers" not in pod, name
        for container in containers:
            assert container["securityContext"] == CONTAINER_SECURITY_CONTEXT, (name, container["name"])
            assert all("hostPort" not in port for port in container.get("ports", [])), (name, container["name"])
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], (name, container["name"])
    [cluster] = run.of_kind("Cluster")
    # enablePDB only where a drain may move a lone instance (test_disruption_budgets_and_surge_per_tier).
    assert sorted(set(cluster["spec"]) - {"enablePDB"}) == CLUSTER_SPEC_FIELDS
    assert cluster["spec"]["inheritedMetadata"] == {"labels": OPERATOR_POD_LABELS}
    poolers = run.of_kind("Pooler")
    assert sorted(p["metadata"]["name"] for p in poolers) == sorted(pooler(tier) for tier in TIERS)
    for obj in poolers:
        name, template = obj["metadata"]["name"], obj["spec"]["template"]
        assert sorted(obj["spec"]) == ["cluster", "instances", "pgbouncer", "template", "type"], name
        assert template["metadata"] == {"labels": OPERATOR_POD_LABELS}, name
        assert sorted(template["spec"]) == ["containers", "priorityClassName", "topologySpreadConstraints"], name
        [container] = template["spec"]["containers"]
        assert sorted(container) == ["name", "resources"] and container["name"] == "pgbouncer", name
        assert sorted(container["resources"]) == ["limits", "requests"], name


@pytest.mark.parametrize("stack", BOTH)
def test_namespace_enforces_restricted_pod_security(stack):
    run = stack_run(stack)
    [namespace] = run.of_kind("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE[stack]
    pod_security = {key: value for key, value in namespace["metadata"]["labels"].items()
                    if key.startswith("pod-security.kubernetes.io/")}
    assert pod_security == {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.30",
        "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "v1.30",
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "v1.30",
    }


# --- disruption budgets and rollout surge --------------------------------------------------------------------------

#: tier -> (PodDisruptionBudget maxUnavailable, Deployment maxSurge), per stack. maxUnavailable of every
#: rollout is 0 and no budget uses minAvailable.
TIER_BUDGETS: dict[str, dict[str, tuple[int | str, str]]] = {
    "staging": {"core": (1, "25%"), "business": (1, "25%"), "support": ("50%", "50%")},
    "production": {"core": (1, "25%"), "business": (1, "25%"), "support": ("50%", "50%")},
}
#: Redis: staging's single server may be moved by a drain; production's three go one at a time.
DATA_BUDGETS = {"staging": {"redis": 1}, "production": {"redis": 1}}


@pytest.mark.parametrize("stack", BOTH)
def test_disruption_budgets_and_surge_per_tier(stack):
    """The budgets we render: each service's, per tier, Redis's and each tier's PgBouncers'.

    CloudNativePG makes the instances' own budgets (``postgres-cluster-primary``, and for 3 or more
    instances ``postgres-cluster`` for the standbys), except where the Cluster turns them off: a lone
    instance in an unprotected stack (staging), which a drain may then move, as it may Redis's lone
    server. The operator makes none for the PgBouncers: ours lets a drain take one of a tier's at a time.
    """
    run = stack_run(stack)
    budgets = {pdb["metadata"]["name"]: pdb["spec"] for pdb in run.of_kind("PodDisruptionBudget")}
    poolers = [f"postgres-pooler-{tier}" for tier in ("business", "core", "support")]
    assert sorted(budgets) == sorted([*SERVICES, "redis", *poolers])
    [cluster] = run.of_kind("Cluster")
    assert cluster["spec"].get("enablePDB", True) is (stack == "production")
    for name in poolers:
        assert budgets.pop(name) == {"maxUnavailable": 1, "selector": {"matchLabels": {"cnpg.io/poolerName": name}}}
    for name, budget in budgets.items():
        assert not any(key.startswith("cnpg.io/") for key in budget["selector"]["matchLabels"]), name
    for tier, names in TIERS.items():
        max_unavailable, max_surge = TIER_BUDGETS[stack][tier]
        for name in names:
            assert budgets[name] == {
                "maxUnavailable": max_unavailable, "unhealthyPodEvictionPolicy": "AlwaysAllow",
                "selector": {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
                                             "app.kubernetes.io/part-of": "codai"}}}, name
            strategy = run.get("Deployment", name)["spec"]["strategy"]
            assert strategy == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": max_surge}}, name
    assert budgets["redis"] == {"maxUnavailable": DATA_BUDGETS[stack]["redis"],
                                "selector": _selector_of("redis", "cache")}


# --- backups ---------------------------------------------------------------------------------------------------------

#: In the cluster: CloudNativePG archives every WAL segment and takes a base backup nightly at 02:30 UTC (its
#: 6-field cron, seconds first) into the stack's folder of the bucket, both gzip-compressed, keeping 30 days.
SCHEDULED_BACKUP = {"cluster": {"name": CLUSTER}, "schedule": "0 30 2 * * *", "backupOwnerReference": "self",
                    "method": "barmanObjectStore", "immediate": True}


def cluster_backup(stack: str) -> dict[str, Any]:
    return {"retentionPolicy": "30d", "barmanObjectStore": {
        "destinationPath": f"s3://codai-backups/{stack}",
        "s3Credentials": {"accessKeyId": {"name": "postgres-backup-s3", "key": "AWS_ACCESS_KEY_ID"},
                          "secretAccessKey": {"name": "postgres-backup-s3", "key": "AWS_SECRET_ACCESS_KEY"}},
        "wal": {"compression": "gzip"}, "data": {"compression": "gzip"}}}


#: A managed server: pg_dump's custom format, compressed with gzip at level 6 (stated, not left to pg_dump's
#: default), one file per database into a folder named after the UTC time, with checksums.
PG_DUMP_LINE = ('pg_dump --format=custom --compress=6 --no-password --dbname="$db" --file="$work/$db.dump" '
                '|| fail "pg_dump of $db failed"')
CHECKSUM_LINE = '(cd "$work" && sha256sum -- *.dump > SHA256SUMS)'
RETENTION_LINE = 'ls -1 "$BACKUP_DIR" | expired "$BACKUP_KEEP" | while read -r old; do'
BACKUP_SIZE = {"staging": "20Gi", "production": "200Gi"}


@pytest.mark.parametrize("stack", BOTH)
def test_postgres_backup_format_target_and_retention(stack):
    run = stack_run(stack)
    assert [b["metadata"]["name"] for b in run.of_kind("ScheduledBackup")] == ["postgres-cluster-base-backup"]
    assert run.get("ScheduledBackup", "postgres-cluster-base-backup")["spec"] == SCHEDULED_BACKUP
    assert run.get("Cluster", CLUSTER)["spec"]["backup"] == cluster_backup(stack)
    # Nothing is kept in the cluster it protects: no dump job, no backup volume.
    for kind in ("CronJob", "Job", "PersistentVolumeClaim"):
        assert run.of_kind(kind) == [], kind
    # A managed server: the dump CronJob, to a volume.
    run = external_run(stack)
    cron = run.get("CronJob", "postgres-backup")["spec"]
    assert (cron["schedule"], cron["timeZone"], cron["concurrencyPolicy"]) == ("30 2 * * *", "Etc/UTC", "Forbid")
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    [dump] = pod["containers"]
    assert "initContainers" not in pod
    assert dump["command"] == ["sh", "/scripts/backup.sh"]
    env = {var["name"]: var["value"] for var in dump["env"]}
    assert {key: env[key] for key in ("BACKUP_DIR", "BACKUP_KEEP", "PGUSER_FILE", "PGPASSWORD_FILE")} == {
        "BACKUP_DIR": "/backups", "BACKUP_KEEP": "7",
        "PGUSER_FILE": "/run/codai/admin/username", "PGPASSWORD_FILE": "/run/codai/admin/password"}
    assert env["BACKUP_DATABASES"].split() == list(POSTGRES_CLIENTS)
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "postgres-backups"}} in pod["volumes"]
    claim = run.get("PersistentVolumeClaim", "postgres-backups")["spec"]
    assert claim == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": BACKUP_SIZE[stack]}}}
    assert run.resource("PersistentVolumeClaim", "postgres-backups").retain_on_delete
    script = run.get("ConfigMap", "postgres-scripts")["data"]["backup.sh"]
    lines = [line.strip() for line in script.splitlines()]
    assert [line for line in lines if "pg_dump " in line and not line.startswith("#")] == [PG_DUMP_LINE]
    assert CHECKSUM_LINE in lines and RETENTION_LINE in lines
    assert 'mv "$work" "$BACKUP_DIR/$stamp"' in lines


# --- Redis users and PostgreSQL roles ------------------------------------------------------------------------------

SERVICE_ACL = "+@all -@dangerous -scan -randomkey -function -script|flush -script|kill"
EXPORTER_ACL = ("-@all +ping +hello +select +client|setname +client|getname +client|info +client|list +info "
                "+config|get +slowlog|get +slowlog|len +latency|latest +latency|histogram +memory|stats "
                "+cluster|info +dbsize")
SENTINEL_ACL = ("+multi +exec +slaveof +ping +subscribe +publish +info +role +config|rewrite +client|setname "
                "+client|kill +script|kill")


@pytest.mark.parametrize("stack", BOTH)
def test_redis_acl_rules_per_user_are_exactly(stack):
    run = stack_run(stack)
    objects = {(o["kind"], o["metadata"]["name"]): o for o in run.kubernetes_objects(redact=False)}
    acl_file = objects[("Secret", "redis-users")]["stringData"]["users.acl"]
    lines = re.sub(r"#[0-9a-f]{64}", "#<sha256>", acl_file).splitlines()
    expected = {f"user {name} reset on #<sha256> ~{name}:* &{name}:* {SERVICE_ACL}" for name in REDIS_CLIENTS}
    expected |= {"user default reset -@all", f"user exporter reset on #<sha256> {EXPORTER_ACL}",
                 "user healthcheck reset on #<sha256> -@all +ping"}
    if REPLICATED_REDIS[stack]:
        expected |= {"user replication reset on #<sha256> -@all +psync +replconf +ping",
                     f"user sentinel reset on #<sha256> &__sentinel__:hello -@all {SENTINEL_ACL}"}
    assert sorted(lines) == sorted(expected)
    conf = objects[("ConfigMap", "redis-config")]["data"]["redis.conf"].splitlines()
    for setting in ("protected-mode yes", "aclfile /run/codai/redis/users.acl", "enable-debug-command no",
                    "enable-module-command no", "enable-protected-configs no"):
        assert setting in conf, setting
    assert not any(line.startswith(("requirepass", "rename-command")) for line in conf)


#: Each service's managed role: it logs in, within its connection limit, and may do nothing else; stated in
#: full, so the operator reverts any of these granted by hand.
MANAGED_ROLE = {"ensure": "present", "login": True, "connectionLimit": 40, "superuser": False, "createdb": False,
                "createrole": False, "replication": False, "bypassrls": False}
#: After the operator's own lines (its replication and PgBouncer logins, by certificate): a role reaches the
#: database of its own name only, over SCRAM; every other connection is refused (before the operator's catch-all).
SERVICE_HBA = ["host sameuser all all scram-sha-256", "host all all all reject"]
#: The server parameters we set: max_connections and the memory ones. Nothing about authentication, TLS,
#: logging or archiving (the operator's, and refused by the settings).
CLUSTER_PARAMETERS = ["effective_cache_size", "maintenance_work_mem", "max_connections", "shared_buffers", "work_mem"]
#: PgBouncer's pools; its authentication (auth_query through the operator's role) and TLS stay the operator's.
POOLER_PARAMETERS = ["default_pool_size", "max_client_conn", "max_db_connections", "reserve_pool_size"]


@pytest.mark.parametrize("stack", BOTH)
def test_postgres_roles_privileges_and_authentication_are_exactly(stack):
    """In the cluster: no superuser login; one managed role and one Database per client; pg_hba by name.

    A managed server: the bootstrap Job's roles and REVOKEs, as before.
    """
    run = stack_run(stack)
    spec = run.get("Cluster", CLUSTER)["spec"]
    assert spec["enableSuperuserAccess"] is False
    assert spec["managed"] == {"roles": [{"name": name, **MANAGED_ROLE, "passwordSecret": {
        "name": f"{name}-postgres-login"}} for name in POSTGRES_CLIENTS]}
    assert sorted(spec["postgresql"]) == ["parameters", "pg_hba"]
    assert spec["postgresql"]["pg_hba"] == SERVICE_HBA
    assert sorted(spec["postgresql"]["parameters"]) == CLUSTER_PARAMETERS
    assert spec["postgresql"]["parameters"]["max_connections"] == "200"
    databases = {obj["metadata"]["name"]: obj["spec"] for obj in run.of_kind("Database")}
    assert databases == {f"{CLUSTER}-{name}": {"cluster": {"name": CLUSTER}, "name": name, "owner": name,
                                               "ensure": "present", "databaseReclaimPolicy": "retain"}
                         for name in POSTGRES_CLIENTS}
    assert [obj["metadata"]["name"] for obj in run.of_kind("Cluster")] == [CLUSTER]
    for tier in TIERS:
        pooler_spec = run.get("Pooler", pooler(tier))["spec"]
        assert (pooler_spec["cluster"], pooler_spec["type"]) == ({"name": CLUSTER}, "rw"), tier
        assert sorted(pooler_spec["pgbouncer"]) == ["parameters", "poolMode"], tier
        assert pooler_spec["pgbouncer"]["poolMode"] == "transaction", tier
        assert sorted(pooler_spec["pgbouncer"]["parameters"]) == POOLER_PARAMETERS, tier
    # No bootstrap, no server configuration of ours, no administrator or monitor credentials.
    assert run.of_kind("Job") == []
    names = {obj["metadata"]["name"] for obj in run.kubernetes_objects()}
    assert names.isdisjoint({"postgres-bootstrap", "postgres-config", "postgres-scripts", "postgres-admin",
                             "postgres-monitor"})

    sql = external_run(stack).get("ConfigMap", "postgres-bootstrap")["data"]["bootstrap.sql"].splitlines()
    roles = [line for line in sql if line.startswith("ALTER ROLE")]
    assert roles == [
        f"""ALTER ROLE "{name}" WITH LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT 40 PASSWORD :'password';"""
        for name in POSTGRES_CLIENTS]
    assert [line for line in sql if line.startswith("GRANT")] == []
    # A managed server's own databases (postgres, template1) are its provider's: only the services' are closed.
    assert [line for line in sql if line.startswith("REVOKE")] == [
        *(line for name in POSTGRES_CLIENTS for line in (f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC;',
                                                         "REVOKE ALL ON SCHEMA public FROM PUBLIC;"))]
    for line in sql:
        if "CREATE ROLE" in line:
            assert re.fullmatch(r"""SELECT 'CREATE ROLE "[a-z_]+"' WHERE NOT EXISTS \(.*\)""", line), line
        assert not re.search(r"(?<!NO)(SUPERUSER|CREATEDB|CREATEROLE|REPLICATION|BYPASSRLS)\b", line), line


# --- the table in docs/security.md -------------------------------------------------------------------------------

SECURITY_DOC = ROOT / "docs" / "security.md"
NODE_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _contract_rows() -> list[list[str]]:
    """The rows of the table under "## The contract" (header and separator left out)."""
    section = SECURITY_DOC.read_text().split("\n## The contract\n", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|")]
    assert rows[0] == ["property", "guarantee", "pinned by"]
    assert set(rows[1][0]) <= {"-", ":"}
    return rows[2:]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        names |= {f"{cls.name}::{node.name}" for node in cls.body
                  if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    return {name for name in names if name.rpartition("::")[2].startswith("test_")}


def test_contract_table_links_existing_tests_and_every_test_here():
    rows = _contract_rows()
    assert len(rows) >= 8
    linked: set[tuple[str, str]] = set()
    for row in rows:
        assert len(row) == 3 and row[0] and row[1], row
        ids = NODE_ID.findall(row[2])
        assert ids, f"{row[0]!r} is pinned by no test"
        linked |= set(ids)
    for path, name in sorted(linked):
        assert (ROOT / path).is_file(), f"{path} does not exist"
        assert name in _test_functions(ROOT / path), f"{path}::{name} does not exist"
    here = Path(__file__).resolve().relative_to(ROOT).as_posix()
    unlinked = sorted(_test_functions(Path(__file__)) - {name for path, name in linked if path == here})
    assert not unlinked, f"tests of {here} missing from the contract in docs/security.md: {unlinked}"
