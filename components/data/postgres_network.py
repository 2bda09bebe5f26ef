"""The NetworkPolicies of CloudNativePG's pods: the instances and each tier's PgBouncers.

The operator makes the pods; we say what may reach them and what they may reach. The instances
take connections from the PgBouncers (5432), from each other (streaming replication, and their
instance managers' status endpoint) and from the operator (status, 8000); they reach each other,
the API server (the instance manager watches its Cluster) and the object store they archive to.
A tier's PgBouncers take connections from that tier's clients only, and reach the instances and
the API server. Prometheus reaches the exporters' ports and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi_kubernetes as k8s
from pulumi_kubernetes.meta.v1 import LabelSelectorArgsDict
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
)

from components.data.cnpg_specs import CLUSTER_LABEL, ROLE_LABEL
from components.data.provider import AnyDataComponent
from components.labels import NAME
from components.network import ip_block_egress, public_https_egress_rule
from components.scraping import prometheus_scrape_rule
from services.tiers import Tier
from settings.data import PostgresSettings

POSTGRES_PORT = 5432
STATUS_PORT = 8000
INSTANCE_METRICS_PORT = 9187
POOLER_METRICS_PORT = 9127


@dataclass(frozen=True)
class ClusterPods:
    """Label selectors of the operator's pods: the instances, each tier's PgBouncers, all PgBouncers."""

    instances: Mapping[str, str]
    poolers: Mapping[Tier, Mapping[str, str]]
    every_pooler: Mapping[str, str]


def _pods(labels: Mapping[str, str]) -> NetworkPolicyPeerArgsDict:
    return {"pod_selector": {"match_labels": dict(labels)}}


def _ports(*numbers: int) -> list[dict[str, object]]:
    return [{"protocol": "TCP", "port": number} for number in numbers]


def network_policies(component: AnyDataComponent, pods: ClusterPods, pg: PostgresSettings) -> None:
    """One policy for the instances and the Cluster's jobs (initdb, joining a standby), one per tier's Pooler."""
    instances = _pods(pods.instances)
    # The Cluster's pods that are not PgBouncers: its instances, and the jobs that make them, which
    # carry the cluster label without a pod role and need what the instances need.
    cluster_pods: LabelSelectorArgsDict = {
        "match_labels": {CLUSTER_LABEL: pods.instances[CLUSTER_LABEL]},
        "match_expressions": [{"key": ROLE_LABEL, "operator": "NotIn", "values": ["pooler"]}]}
    cluster: NetworkPolicyPeerArgsDict = {"pod_selector": cluster_pods}
    ingress: list[NetworkPolicyIngressRuleArgsDict] = [
        {"from_": [cluster, _pods(pods.every_pooler)], "ports": _ports(POSTGRES_PORT)},  # type: ignore[typeddict-item]
        {"from_": [cluster, {"namespace_selector": {"match_labels": {
            "kubernetes.io/metadata.name": pg.operator_namespace}}}], "ports": _ports(STATUS_PORT)},  # type: ignore[typeddict-item]
        prometheus_scrape_rule(component.args.scraping, INSTANCE_METRICS_PORT),
    ]
    egress: list[NetworkPolicyEgressRuleArgsDict] = [
        {"to": [cluster], "ports": _ports(POSTGRES_PORT, STATUS_PORT)},  # type: ignore[typeddict-item]
        *component.args.kubernetes_api.egress(), *_object_store_egress(pg)]
    _policy(component, "network-policy", component.name, cluster_pods, ingress=ingress, egress=egress)
    for tier, selector in pods.poolers.items():
        clients = sorted(spec.name for spec in component.clients if spec.tier == tier)
        pooler_ingress: list[NetworkPolicyIngressRuleArgsDict] = [
            {"from_": [{"pod_selector": {"match_expressions": [{"key": NAME, "operator": "In", "values": clients}]}}],
             "ports": _ports(POSTGRES_PORT)},  # type: ignore[typeddict-item]
            prometheus_scrape_rule(component.args.scraping, POOLER_METRICS_PORT),
        ]
        pooler_egress: list[NetworkPolicyEgressRuleArgsDict] = [
            {"to": [instances], "ports": _ports(POSTGRES_PORT)},  # type: ignore[typeddict-item]
            *component.args.kubernetes_api.egress()]
        _policy(component, f"pooler-{tier.value}-network-policy", f"{component.name}-pooler-{tier.value}",
                {"match_labels": dict(selector)},
                ingress=pooler_ingress, egress=pooler_egress)


def _object_store_egress(pg: PostgresSettings) -> list[NetworkPolicyEgressRuleArgsDict]:
    """The store's ranges on its port when the stack names them, else any public address on 443."""
    store = pg.backup.object_store if pg.backup.enabled else None
    if store is None:
        return []
    port = urlsplit(store.endpoint).port if store.endpoint else None
    if store.egress_cidrs:
        return [ip_block_egress(store.egress_cidrs, port or 443)]
    rule = public_https_egress_rule()
    if port and port != 443:
        rule["ports"] = _ports(port)  # type: ignore[typeddict-item]
    return [rule]


def _policy(component: AnyDataComponent, resource: str, name: str, selector: LabelSelectorArgsDict, *,
            ingress: list[NetworkPolicyIngressRuleArgsDict], egress: list[NetworkPolicyEgressRuleArgsDict]) -> None:
    k8s.networking.v1.NetworkPolicy(
        f"{component.name}-{resource}",
        metadata=component.meta(name, "network-policy"),
        spec={"pod_selector": selector, "policy_types": ["Ingress", "Egress"],
              "ingress": ingress, "egress": egress},
        opts=component.child_opts(),
    )
