"""The security contract (docs/security.md, "The contract"), one test per property.

Every expected value here is written out literally: nothing is read from the code under test
(tier policies, settings defaults, builders, the catalog), so weakening a property anywhere,
even in a table the code reads, fails a test. The objects are the ones the program renders for
each stack under Pulumi's mocks.
"""

from __future__ import annotations

import ast
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, stack_run

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
REDIS_CLIENTS = ("aide", "bancai", "codai", "cumparai", "fabricai", "hub", "jucai", "logai", "memorai", "publicai",
                 "sociai", "stocai", "studiai", "wallet", "x")

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
#: data servers, and HTTPS to public addresses.
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
DATA_RULES = {
    "postgres": {"to": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": "postgres",
        "app.kubernetes.io/part-of": "codai", "app.kubernetes.io/component": "database"}}}],
        "ports": [{"protocol": "TCP", "port": 5432}]},
    "redis": {"to": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "redis",
        "app.kubernetes.io/part-of": "codai", "app.kubernetes.io/component": "cache"}}}],
        "ports": [{"protocol": "TCP", "port": 6379}]},
}


def data_rule(server: str, stack: str) -> dict[str, Any]:
    """A client's egress to a data server; a replicated Redis's clients also reach its sentinels."""
    if server == "redis" and REPLICATED_REDIS[stack]:
        return {**DATA_RULES[server], "ports": [{"protocol": "TCP", "port": 6379},
                                                {"protocol": "TCP", "port": SENTINEL_PORT}]}
    return DATA_RULES[server]
#: What "HTTPS to the internet" leaves out: RFC 1918, link-local (the cloud metadata address
#: 169.254.169.254 included), carrier-grade NAT (RFC 6598), "this network", loopback, multicast and reserved.
PUBLIC_HTTPS_EXCEPT = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
                       "0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"]
PUBLIC_HTTPS_RULE = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PUBLIC_HTTPS_EXCEPT}}],
                     "ports": [{"protocol": "TCP", "port": 443}]}


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
    for name, (peers, data, https) in EGRESS.items():
        expected = [DNS_RULE, *(_peer_rule(peer, port) for peer, port in sorted(peers.items())),
                    *(data_rule(server, stack) for server in data), *([PUBLIC_HTTPS_RULE] if https else [])]
        assert policies[name]["egress"] == expected, name
        assert policies[name]["policyTypes"] == ["Ingress", "Egress"], name


@pytest.mark.parametrize("stack", BOTH)
def test_public_https_except_list_is_exactly(stack):
    blocks = [peer["ipBlock"] for policy in stack_run(stack).of_kind("NetworkPolicy")
              for rule in policy["spec"].get("egress", []) for peer in rule["to"] if "ipBlock" in peer]
    assert len(blocks) == 4  # bancai, fabricai, stocai, x
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
    metrics_ports = {"metrics", 9187, 9121, SENTINEL_METRICS_PORT}
    for policy in run.of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            ports = {port["port"] for port in rule["ports"]}
            if ports & metrics_ports:
                assert rule["from"] == [PROMETHEUS_PEER], policy["metadata"]["name"]
                assert len(rule["ports"]) == 1 and rule["ports"][0]["protocol"] == "TCP", policy["metadata"]["name"]
            if PROMETHEUS_PEER in rule["from"]:
                assert ports <= metrics_ports, policy["metadata"]["name"]
    scraped = [("postgres", 9187), ("redis", 9121), *([("redis", SENTINEL_METRICS_PORT)] * REPLICATED_REDIS[stack])]
    for server, port in scraped:
        assert {"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": port}]} in \
            run.get("NetworkPolicy", server)["spec"]["ingress"]


#: Every namespace a NetworkPolicy lets traffic come from or go to, with the pods and ports admitted.
NAMESPACE_PEERS = {
    ("egress", "kube-system"): ({"k8s-app": "kube-dns"}, {("UDP", 53), ("TCP", 53)}),
    ("ingress", "monitoring"): ({"app.kubernetes.io/name": "prometheus"}, {("TCP", "metrics"), ("TCP", 9187),
                                                                          ("TCP", 9121), ("TCP", 9355)}),
    ("ingress", "ingress-nginx"): (None, {("TCP", "http")}),
}


@pytest.mark.parametrize("stack", BOTH)
def test_no_rule_admits_another_namespace_but_these(stack):
    policies = stack_run(stack).of_kind("NetworkPolicy")
    assert len(policies) == 35
    for policy in policies:
        name = policy["metadata"]["name"]
        for direction, peers_key in (("egress", "to"), ("ingress", "from")):
            for rule in policy["spec"].get(direction, []):
                assert rule.get(peers_key) and rule.get("ports"), (name, rule)  # never "every source/port"
                for peer in rule[peers_key]:
                    assert set(peer) <= {"podSelector", "namespaceSelector", "ipBlock"}, (name, peer)
                    if "namespaceSelector" not in peer:
                        continue
                    namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                    pods, ports = NAMESPACE_PEERS[(direction, namespace)]
                    assert peer.get("podSelector") == (pods and {"matchLabels": pods}), (name, peer)
                    assert {(p["protocol"], p["port"]) for p in rule["ports"]} <= ports, (name, rule)


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


@pytest.mark.parametrize("stack", BOTH)
def test_data_server_and_job_policies_are_exactly(stack):
    run = stack_run(stack)

    def clients(names: tuple[str, ...]) -> dict[str, Any]:
        return {"podSelector": {"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": list(names)}]}}

    assert run.get("NetworkPolicy", "postgres")["spec"] == {
        "podSelector": _selector_of("postgres", "database"), "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"from": [clients(POSTGRES_CLIENTS), {"podSelector": _selector_of("postgres", "bootstrap")},
                      {"podSelector": _selector_of("postgres", "backup")}],
             "ports": [{"protocol": "TCP", "port": 5432}]},
            {"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": 9187}]}]}
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
    for job in ("bootstrap", "backup"):
        assert run.get("NetworkPolicy", f"postgres-{job}")["spec"] == {
            "podSelector": _selector_of("postgres", job), "policyTypes": ["Ingress", "Egress"],
            "egress": [DATA_RULES["postgres"]]}


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
DATA_PASSWORDS = {
    **{f"postgres-client-{name}-password": 32 for name in POSTGRES_CLIENTS},
    **{f"redis-client-{name}-password": 32 for name in REDIS_CLIENTS},
    "postgres-admin-password": 32, "postgres-monitor-password": 32,
    "redis-exporter-password": 32, "redis-healthcheck-password": 32,
}


@pytest.mark.parametrize("stack", BOTH)
def test_every_generated_password_has_exactly_this_strength(stack):
    passwords = {r.name: r.inputs for r in stack_run(stack).resources
                 if r.type == "random:index/randomPassword:RandomPassword"}
    # A replicated Redis adds the logins of its replicas and of its sentinels.
    replication = {"redis-replication-password": 32, "redis-sentinel-password": 32} if REPLICATED_REDIS[stack] else {}
    expected = {**APP_SECRETS, **DATA_PASSWORDS, **replication}
    assert len(expected) == {"staging": 47, "production": 49}[stack]
    assert sorted(passwords) == sorted(expected)
    for name, length in expected.items():
        assert passwords[name] == {"length": length, **ALPHANUMERIC}, name
    assert {r.type for r in stack_run(stack).resources if r.type.startswith("random:")} == {
        "random:index/randomPassword:RandomPassword"}


@pytest.mark.parametrize("stack", BOTH)
def test_secrets_are_exactly_these_opaque_ones(stack):
    secrets = {obj["metadata"]["name"]: obj for obj in stack_run(stack).of_kind("Secret")}
    expected = {
        *(f"{name}-postgres" for name in POSTGRES_CLIENTS), *(f"{name}-redis" for name in REDIS_CLIENTS),
        "bancai-app-secrets", "logai-app-secrets", "memorai-app-secrets", "wallet-app-secrets",
        "postgres-admin", "postgres-monitor", "redis-users", *(["redis-replication"] * REPLICATED_REDIS[stack]),
    }
    assert sorted(secrets) == sorted(expected)
    for name, secret in secrets.items():
        assert secret["type"] == "Opaque", name  # never a service-account-token Secret
        assert set(secret["stringData"].values()) == {"<redacted>"}, name


@pytest.mark.parametrize("stack", BOTH)
def test_service_accounts_carry_no_api_token(stack):
    accounts = {sa["metadata"]["name"]: sa for sa in stack_run(stack).of_kind("ServiceAccount")}
    assert sorted(accounts) == sorted([*SERVICES, "postgres", "redis"])
    for name, account in accounts.items():
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


@pytest.mark.parametrize("stack", BOTH)
def test_every_pod_template_is_restricted(stack):
    run = stack_run(stack)
    templates = _pod_templates(run)
    assert sorted(kind for kind, _, _ in templates) == ["CronJob", *["Deployment"] * 29, "Job",
                                                         "StatefulSet", "StatefulSet"]
    assert {obj["kind"] for obj in run.kubernetes_objects()}.isdisjoint({"DaemonSet", "Pod", "ReplicaSet"})
    for kind, name, pod in templates:
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
#: A single server (PostgreSQL; Redis in staging): a drain may move it in staging, never in production.
#: Production's three Redis servers: a drain may take one at a time.
DATA_BUDGETS = {"staging": {"postgres": 1, "redis": 1}, "production": {"postgres": 0, "redis": 1}}


@pytest.mark.parametrize("stack", BOTH)
def test_disruption_budgets_and_surge_per_tier(stack):
    run = stack_run(stack)
    budgets = {pdb["metadata"]["name"]: pdb["spec"] for pdb in run.of_kind("PodDisruptionBudget")}
    assert sorted(budgets) == sorted([*SERVICES, "postgres", "redis"])
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
    for server, component in (("postgres", "database"), ("redis", "cache")):
        assert budgets[server] == {"maxUnavailable": DATA_BUDGETS[stack][server],
                                   "selector": _selector_of(server, component)}, server


# --- backups ---------------------------------------------------------------------------------------------------------

#: pg_dump's custom format, compressed with gzip at level 6 (stated, not left to pg_dump's default), one file
#: per database into a folder named after the UTC time, with checksums.
PG_DUMP_LINE = ('pg_dump --format=custom --compress=6 --no-password --dbname="$db" --file="$work/$db.dump" '
                '|| fail "pg_dump of $db failed"')
CHECKSUM_LINE = '(cd "$work" && sha256sum -- *.dump > SHA256SUMS)'
RETENTION_LINE = 'ls -1 "$BACKUP_DIR" | expired "$BACKUP_KEEP" | while read -r old; do'
BACKUP_SIZE = {"staging": "20Gi", "production": "200Gi"}


@pytest.mark.parametrize("stack", BOTH)
def test_postgres_backup_format_target_and_retention(stack):
    run = stack_run(stack)
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


@pytest.mark.parametrize("stack", BOTH)
def test_postgres_roles_privileges_and_authentication_are_exactly(stack):
    run = stack_run(stack)
    sql = run.get("ConfigMap", "postgres-bootstrap")["data"]["bootstrap.sql"].splitlines()
    roles = [line for line in sql if line.startswith("ALTER ROLE")]
    assert roles == [
        """ALTER ROLE "codai_monitor" WITH LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT 5 PASSWORD :'password';""",
        *(f"""ALTER ROLE "{name}" WITH LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT 40 PASSWORD :'password';"""
          for name in POSTGRES_CLIENTS)]
    assert [line for line in sql if line.startswith("GRANT")] == [
        'GRANT pg_monitor TO "codai_monitor";', 'GRANT CONNECT ON DATABASE "postgres" TO "codai_monitor";']
    assert [line for line in sql if line.startswith("REVOKE")] == [
        'REVOKE CONNECT, TEMPORARY ON DATABASE "postgres" FROM PUBLIC;',
        'REVOKE CONNECT, TEMPORARY ON DATABASE "template1" FROM PUBLIC;',
        *(line for name in POSTGRES_CLIENTS for line in (f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC;',
                                                         "REVOKE ALL ON SCHEMA public FROM PUBLIC;"))]
    for line in sql:
        if "CREATE ROLE" in line:
            assert re.fullmatch(r"""SELECT 'CREATE ROLE "[a-z_]+"' WHERE NOT EXISTS \(.*\)""", line), line
        assert not re.search(r"(?<!NO)(SUPERUSER|CREATEDB|CREATEROLE|REPLICATION|BYPASSRLS)\b", line), line
    config = run.get("ConfigMap", "postgres-config")["data"]
    hba = [line.split() for line in config["pg_hba.conf"].splitlines() if line and not line.startswith("#")]
    # Each service's role reaches the database of its own name only; the administrator every database;
    # the exporter's role the postgres database; all over SCRAM. Nothing else is admitted.
    assert hba == [["local", "all", "postgres", "trust"],
                   *(["host", database, user, address, "scram-sha-256"]
                     for database, user in (("sameuser", "all"), ("all", "postgres"), ("postgres", "codai_monitor"))
                     for address in ("0.0.0.0/0", "::/0"))]
    assert "password_encryption = 'scram-sha-256'" in config["postgresql.conf"].splitlines()


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
