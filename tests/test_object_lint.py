"""The cross-object lint: clean on the real stacks, and each rule catches the break it is for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from services.catalog import CATALOG
from tools.connectivity import Call, connectivity, connectivity_report, declared_calls
from tools.lint_objects import lint
from tools.offline import StackRun
from tools.operator_pods import operator_objects
from tools.rendered import selector_matches
from tools.validate import made_elsewhere

Object = dict[str, Any]


def objects_of(run: StackRun) -> list[Object]:
    return copy.deepcopy(run.kubernetes_objects())


def find(objects: list[Object], kind: str, name: str) -> Object:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def linted(run: StackRun, objects: list[Object]) -> list[str]:
    """The lint of ``objects``, knowing the Secrets ``run``'s stack file says someone else makes."""
    return lint(objects, made_elsewhere(run.stack))


def broken(run: StackRun, kind: str, name: str, change: Callable[[Object], Any]) -> list[str]:
    """The lint of ``run``'s objects after ``change`` to one of them."""
    objects = objects_of(run)
    change(find(objects, kind, name))
    return linted(run, objects)


def without(run: StackRun, *keys: tuple[str, str]) -> list[Object]:
    return [o for o in objects_of(run) if (o["kind"], o["metadata"]["name"]) not in keys]


# --- the real stacks ----------------------------------------------------------------------------


def test_the_real_stacks_are_clean(any_stack):
    objects = any_stack.kubernetes_objects()
    assert linted(any_stack, objects) == []
    # The object-store keys of the Cluster's backups are the stack owner's to create: a reference all the same.
    assert lint(objects) == ["Cluster/postgres-cluster: backup s3Credentials Secret postgres-backup-s3 is not rendered"]
    report = connectivity_report(objects, declared_calls())
    assert report.errors == []
    service_calls = [c for c in declared_calls() if c.dependency is None]
    assert set(service_calls) <= set(report.checked) and len(service_calls) > 40
    # Both stack files run PostgreSQL and Redis in the cluster: every use of them is checked too.
    assert report.outside == [] and set(report.checked) == set(declared_calls())


def test_declared_calls_are_the_catalogs_callers_and_dependencies():
    calls = declared_calls()
    assert Call("stocai", "wallet") in calls
    assert Call("wallet", "postgres", "postgres") in calls
    assert len(calls) == sum(len(CATALOG.callers_of(n)) + len(CATALOG[n].uses) for n in CATALOG)


# --- selectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "matches"), [
    ({}, True),
    ({"matchLabels": {"a": "1"}}, True),
    ({"matchLabels": {"a": "2"}}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, False),
    ({"matchExpressions": [{"key": "c", "operator": "NotIn", "values": ["1"]}]}, True),
    ({"matchExpressions": [{"key": "b", "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "c", "operator": "Exists"}]}, False),
])
def test_label_selectors_follow_kubernetes(selector, matches):
    assert selector_matches(selector, {"a": "1", "b": "2"}) is matches


# --- one broken object set per rule ----------------------------------------------------------------


def test_a_service_selector_matching_no_pod(staging):
    errors = broken(staging, "Service", "wallet", lambda s: s["spec"]["selector"].update({"codai.io/track": "gone"}))
    assert len(errors) == 1
    assert errors[0].startswith("Service/wallet: selector {") and errors[0].endswith("'gone'} matches no pod")


@pytest.mark.parametrize("target", ["web", 8081])
def test_a_service_target_port_the_container_does_not_expose(staging, target):
    errors = broken(staging, "Service", "wallet", lambda s: s["spec"]["ports"][0].update({"targetPort": target}))
    assert errors == [f"Service/wallet: targetPort {target!r} is not a port of Deployment/wallet's containers"]


def test_a_numeric_target_port_that_is_exposed_passes(staging):
    port = find(objects_of(staging), "Deployment", "wallet")["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert broken(staging, "Service", "wallet",
                  lambda s: s["spec"]["ports"][0].update({"targetPort": port["containerPort"]})) == []


def test_an_hpa_pointing_at_nothing(staging):
    errors = broken(staging, "HorizontalPodAutoscaler", "x",
                    lambda h: h["spec"]["scaleTargetRef"].update({"name": "y"}))
    assert errors == ["HorizontalPodAutoscaler/x: scaleTargetRef Deployment/y is not rendered"]


def test_a_pdb_and_a_network_policy_selecting_no_pod(staging):
    def rename(obj: Object, key: str) -> None:
        obj["spec"][key]["matchLabels"]["app.kubernetes.io/name"] = "doc"

    assert broken(staging, "PodDisruptionBudget", "docs", lambda p: rename(p, "selector")) == [
        "PodDisruptionBudget/docs: selector matches no pod"]
    assert broken(staging, "NetworkPolicy", "docs", lambda p: rename(p, "podSelector")) == [
        "NetworkPolicy/docs: podSelector matches no pod"]


def test_an_ingress_to_a_missing_service_or_port(staging):
    def backend(ingress: Object) -> Object:
        service: Object = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        return service

    assert broken(staging, "Ingress", "hub", lambda i: backend(i).update(name="nobody")) == [
        "Ingress/hub: backend Service nobody is not rendered"]
    assert broken(staging, "Ingress", "hub", lambda i: backend(i).update(port={"name": "grpc"})) == [
        "Ingress/hub: Service hub has no port 'grpc'"]
    assert broken(staging, "Ingress", "hub", lambda i: backend(i).update(port={"number": 8080})) == [
        "Ingress/hub: Service hub has no port 8080"]


def test_an_ingress_tls_secret_is_made_by_cert_manager_only_when_annotated(staging):
    def no_issuer(ingress: Object) -> None:
        ingress["metadata"]["annotations"].pop("cert-manager.io/cluster-issuer")

    assert broken(staging, "Ingress", "hub", no_issuer) == [
        "Ingress/hub: TLS Secret hub-tls is neither rendered nor made by cert-manager"]


def test_config_maps_secrets_and_service_accounts_must_be_rendered(staging):
    objects = without(staging, ("ConfigMap", "logai-config"), ("Secret", "logai-app-secrets"),
                      ("ServiceAccount", "logai"))
    assert sorted(linted(staging, objects)) == [
        "Deployment/logai: ServiceAccount logai is not rendered",
        "Deployment/logai: envFrom ConfigMap logai-config is not rendered",
        "Deployment/logai: envFrom Secret logai-app-secrets is not rendered",
    ]


def test_env_and_volume_references_must_be_rendered_unless_cert_manager_makes_them(staging):
    objects = objects_of(staging)
    pod = find(objects, "Deployment", "docs")["spec"]["template"]["spec"]
    pod["containers"][0]["env"] = [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "api-key", "key": "k"}}}]
    pod["volumes"] += [
        {"name": "settings", "configMap": {"name": "docs-settings"}},
        {"name": "both", "projected": {"sources": [{"secret": {"name": "docs-cert"}},
                                                   {"configMap": {"name": "docs-config"}}]}},
    ]
    assert linted(staging, objects) == [
        "Deployment/docs: env Secret api-key is not rendered",
        "Deployment/docs: volume ConfigMap docs-settings is not rendered",
        "Deployment/docs: volume Secret docs-cert is not rendered",
    ]
    objects.append({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                    "metadata": {"name": "docs", "namespace": pod_namespace(objects)},
                    "spec": {"secretName": "docs-cert", "issuerRef": {"name": "ca"}}})
    assert linted(staging, objects) == [
        "Deployment/docs: env Secret api-key is not rendered",
        "Deployment/docs: volume ConfigMap docs-settings is not rendered",
    ]


def pod_namespace(objects: list[Object]) -> str:
    namespace: str = find(objects, "Deployment", "docs")["metadata"]["namespace"]
    return namespace


def test_a_service_monitor_selecting_nothing_or_a_missing_port(staging):
    assert broken(staging, "ServiceMonitor", "kodex", lambda m: m["spec"]["endpoints"][0].update({"port": "prom"})) == [
        "ServiceMonitor/kodex: no selected Service has a port named 'prom'"]
    assert broken(staging, "ServiceMonitor", "kodex",
                  lambda m: m["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "kodx"})) == [
        "ServiceMonitor/kodex: selects no Service"]


def test_a_pod_monitor_selecting_nothing_or_a_missing_port(staging):
    objects = objects_of(staging)
    monitor: Object = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                       "metadata": {"name": "kodex", "namespace": pod_namespace(objects)},
                       "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "kodex"}},
                                "podMetricsEndpoints": [{"port": "metrics"}]}}
    assert linted(staging, [*objects, monitor]) == []
    monitor["spec"]["podMetricsEndpoints"] = [{"port": "prom"}]
    assert linted(staging, [*objects, monitor]) == [
        "PodMonitor/kodex: no selected pod has a container port named 'prom'"]
    monitor["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "kodx"}}
    assert linted(staging, [*objects, monitor]) == ["PodMonitor/kodex: selector matches no pod"]


# --- connectivity through NetworkPolicies -------------------------------------------------------


def test_a_policy_cutting_a_declared_call_at_either_end(staging):
    objects = objects_of(staging)
    wallet = find(objects, "NetworkPolicy", "wallet")["spec"]
    wallet["ingress"] = [r for r in wallet["ingress"] if "namespaceSelector" in r["from"][0]]
    stocai = find(objects, "NetworkPolicy", "stocai")["spec"]
    stocai["egress"] = [r for r in stocai["egress"] if "wallet" not in str(r.get("to"))]
    assert connectivity(objects, [Call("stocai", "wallet"), Call("bancai", "wallet")]) == [
        "NetworkPolicy: stocai may call wallet (catalog) but the egress of Deployment/stocai does not allow port 8080",
        "NetworkPolicy: stocai may call wallet (catalog) but the ingress of Deployment/wallet refuses "
        "Deployment/stocai on port 8080",
        "NetworkPolicy: bancai may call wallet (catalog) but the ingress of Deployment/wallet refuses "
        "Deployment/bancai on port 8080",
    ]


def test_a_named_ingress_port_is_resolved_in_the_server_pod(staging):
    objects = objects_of(staging)
    for rule in find(objects, "NetworkPolicy", "wallet")["spec"]["ingress"]:
        for port in rule["ports"]:
            port["port"] = "metrics" if port["port"] == "http" else port["port"]
    errors = connectivity(objects, [Call("stocai", "wallet")])
    assert errors == ["NetworkPolicy: stocai may call wallet (catalog) but the ingress of Deployment/wallet refuses "
                      "Deployment/stocai on port 8080"]


def test_without_the_default_deny_a_pod_with_no_policy_is_open(staging):
    objects = without(staging, ("NetworkPolicy", "wallet"), ("NetworkPolicy", "default-deny-all"))
    assert connectivity(objects, [Call("stocai", "wallet")]) == []
    objects = without(staging, ("NetworkPolicy", "wallet"))  # the default deny alone isolates wallet
    assert len(connectivity(objects, [Call("stocai", "wallet")])) == 1


def test_a_peer_in_another_namespace_is_not_a_peer_here(staging):
    objects = objects_of(staging)
    for rule in find(objects, "NetworkPolicy", "wallet")["spec"]["ingress"]:
        for peer in rule["from"]:
            if "namespaceSelector" not in peer:
                peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}}
    assert len(connectivity(objects, [Call("stocai", "wallet")])) == 1


def test_a_call_to_a_service_that_is_not_rendered_is_an_error(staging):
    assert connectivity(staging.kubernetes_objects(), [Call("stocai", "walet")]) == [
        "NetworkPolicy: stocai may call walet (catalog) but no workload of walet is rendered"]


def test_a_dependency_in_the_cluster_must_be_reachable_from_its_users(staging):
    calls = [Call("wallet", "postgres", "postgres"), Call("bancai", "postgres", "postgres"),
             Call("wallet", "redis", "redis")]
    report = connectivity_report(staging.kubernetes_objects(), calls)
    assert report.checked == calls and report.outside == [] and report.errors == []

    objects = objects_of(staging)
    wallet = find(objects, "NetworkPolicy", "wallet")["spec"]
    wallet["egress"] = [rule for rule in wallet["egress"] if {"port": 5432, "protocol": "TCP"} not in rule["ports"]]
    admitted = find(objects, "NetworkPolicy", "postgres-pooler-business")["spec"]["ingress"][0]["from"][0][
        "podSelector"]["matchExpressions"][0]["values"]
    admitted.remove("bancai")
    assert connectivity(objects, calls) == [
        "NetworkPolicy: wallet may call postgres (uses postgres) but the egress of Deployment/wallet does not allow "
        "port 5432",
        "NetworkPolicy: bancai may call postgres (uses postgres) but the ingress of "
        "Deployment/postgres-pooler-business refuses Deployment/bancai on port 5432",
    ]


# --- what the CloudNativePG operator makes -------------------------------------------------------


def test_the_operator_makes_pods_and_services_from_the_crs_as_its_source_does():
    cluster = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "db", "namespace": "n"},
               "spec": {"instances": 3, "inheritedMetadata": {"labels": {"team": "a"}}}}
    pooler = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Pooler",
              "metadata": {"name": "db-pool", "namespace": "n"},
              "spec": {"cluster": {"name": "db"}, "instances": 2, "template": {
                  "metadata": {"labels": {"team": "b", "cnpg.io/podRole": "mine"}},
                  "spec": {"containers": [{"name": "pgbouncer", "resources": {}}]}}}}
    instance, deployment, service = operator_objects([cluster, pooler, {"kind": "Cluster", "apiVersion": "x/v1"}])
    assert (instance["kind"], instance["metadata"]) == ("Pod", {"name": "db-1", "namespace": "n", "labels": {
        "cnpg.io/cluster": "db", "cnpg.io/instanceName": "db-1", "cnpg.io/podRole": "instance",
        "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/managed-by": "cloudnative-pg",
        "app.kubernetes.io/instance": "db", "app.kubernetes.io/component": "database", "team": "a"}})
    assert {(p["name"], p["containerPort"]) for p in instance["spec"]["containers"][0]["ports"]} == {
        ("postgresql", 5432), ("metrics", 9187), ("status", 8000)}
    template = deployment["spec"]["template"]
    assert (deployment["kind"], deployment["metadata"]["name"]) == ("Deployment", "db-pool")
    assert template["metadata"]["labels"] == {  # the operator's labels over the template's
        "team": "b", "cnpg.io/poolerName": "db-pool", "cnpg.io/cluster": "db", "cnpg.io/podRole": "pooler",
        "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/managed-by": "cloudnative-pg",
        "app.kubernetes.io/instance": "db", "app.kubernetes.io/component": "pooler"}
    assert template["spec"]["containers"] == [{"name": "pgbouncer", "resources": {}, "ports": [
        {"name": "pgbouncer", "containerPort": 5432, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9127, "protocol": "TCP"}]}]
    assert (service["kind"], service["metadata"]["name"], service["spec"]["selector"]) == (
        "Service", "db-pool", {"cnpg.io/poolerName": "db-pool"})
    assert service["spec"]["ports"] == [{"name": "pgbouncer", "port": 5432, "targetPort": "pgbouncer",
                                         "protocol": "TCP"}]


def test_a_network_policy_selecting_a_pooler_that_does_not_exist(staging):
    assert broken(staging, "NetworkPolicy", "postgres-pooler-core",
                  lambda p: p["spec"]["podSelector"]["matchLabels"].update({"cnpg.io/poolerName": "nonexistent"})) == [
        "NetworkPolicy/postgres-pooler-core: podSelector matches no pod"]
    objects = without(staging, ("Pooler", "postgres-pooler-core"))  # its PgBouncers go with it
    assert sorted(linted(staging, objects)) == ["NetworkPolicy/postgres-pooler-core: podSelector matches no pod",
                                                "PodDisruptionBudget/postgres-pooler-core: selector matches no pod"]


def test_metrics_services_must_select_the_operators_pods_on_their_ports(staging):
    assert broken(staging, "Service", "postgres-metrics", lambda s: s["spec"]["selector"].update(
        {"cnpg.io/podRole": "primary"})) == [
        "Service/postgres-metrics: selector {'cnpg.io/cluster': 'postgres-cluster', 'cnpg.io/podRole': 'primary'} "
        "matches no pod"]
    assert sorted(broken(staging, "Service", "postgres-pooler-metrics",
                         lambda s: s["spec"]["ports"][0].update({"targetPort": 9187}))) == [
        f"Service/postgres-pooler-metrics: targetPort 9187 is not a port of Deployment/postgres-pooler-{tier}'s "
        "containers" for tier in ("business", "core", "support")]


def test_a_cluster_role_whose_password_secret_is_not_rendered(staging):
    objects = without(staging, ("Secret", "wallet-postgres-login"))
    assert linted(staging, objects) == [
        "Cluster/postgres-cluster: role wallet passwordSecret Secret wallet-postgres-login is not rendered"]
    assert lint(objects, {"wallet-postgres-login", *made_elsewhere(staging.stack)}) == []  # made by someone else
    roles = find(objects, "Cluster", "postgres-cluster")["spec"]["managed"]["roles"]
    next(role for role in roles if role["name"] == "wallet").pop("passwordSecret")  # a role without a password
    assert linted(staging, objects) == []


def test_a_client_must_reach_its_tiers_pooler_not_the_instances(staging):
    calls = [Call("wallet", "postgres", "postgres")]
    objects = objects_of(staging)
    for rule in find(objects, "NetworkPolicy", "wallet")["spec"]["egress"]:
        if {"port": 5432, "protocol": "TCP"} in rule["ports"]:
            rule["to"] = [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "postgres-cluster",
                                                           "cnpg.io/podRole": "instance"}}}]
    assert connectivity(objects, calls) == [
        "NetworkPolicy: wallet may call postgres (uses postgres) but the egress of Deployment/wallet does not allow "
        "port 5432"]
    # Another tier's Pooler is not its own either.
    for rule in find(objects, "NetworkPolicy", "wallet")["spec"]["egress"]:
        if {"port": 5432, "protocol": "TCP"} in rule["ports"]:
            rule["to"] = [{"podSelector": {"matchLabels": {"cnpg.io/poolerName": "postgres-pooler-core"}}}]
    assert len(connectivity(objects, calls)) == 1
    objects = without(staging, ("Pooler", "postgres-pooler-business"))
    assert connectivity(objects, calls) == [
        "NetworkPolicy: wallet may call postgres (uses postgres) but its Pooler postgres-pooler-business is not "
        "rendered"]


def test_the_poolers_must_reach_the_instances(staging):
    calls = [Call("wallet", "postgres", "postgres")]
    objects = objects_of(staging)
    pooler = find(objects, "NetworkPolicy", "postgres-pooler-business")["spec"]
    pooler["egress"] = [rule for rule in pooler["egress"] if "podSelector" not in str(rule["to"])]
    instances = find(objects, "NetworkPolicy", "postgres")["spec"]
    instances["ingress"][0]["from"] = instances["ingress"][0]["from"][:1]  # the Cluster's own pods only
    assert connectivity(objects, calls) == [
        "NetworkPolicy: wallet may call postgres (uses postgres) but the egress of Deployment/postgres-pooler-business "
        "does not allow port 5432",
        "NetworkPolicy: wallet may call postgres (uses postgres) but the ingress of Pod/postgres-cluster-1 refuses "
        "Deployment/postgres-pooler-business on port 5432",
    ]
    find(objects, "Pooler", "postgres-pooler-business")["spec"]["cluster"]["name"] = "elsewhere"
    assert connectivity(objects, calls) == [
        "NetworkPolicy: wallet may call postgres (uses postgres) but no instance of the Cluster of "
        "Deployment/postgres-pooler-business is rendered"]


def test_a_dependency_with_no_server_in_the_render_is_outside(staging):
    report = connectivity_report(staging.kubernetes_objects(), [Call("wallet", "mysql", "mysql")])
    assert report.errors == [] and report.outside == [Call("wallet", "mysql", "mysql")]
