"""The objects of an in-cluster data server, whichever server it is: its client, headless and
metrics Services, the StatefulSet with its volume, the PodDisruptionBudget, the server's
NetworkPolicy and the ServiceMonitor of its exporter.

Each builder takes the component the objects belong to (their parent, names and labels); the
component's subclass builds the pod and the configuration (components/data/postgres.py, redis.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import PodTemplateSpecArgsDict, ServicePortArgsDict, ServiceSpecArgsDict
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)

from components.data.pod_parts import Pod, Port, volume_claim
from components.data.provider import AnyDataComponent
from components.labels import NAME
from components.pod import hardened_pod_spec
from components.scraping import (
    METRICS_PORT_NAME,
    MonitoredWorkload,
    ScrapeEndpoint,
    prometheus_scrape_rule,
    service_monitor,
)
from components.security import ScannerException


def services(component: AnyDataComponent) -> None:
    """Client Service (``<name>``), headless Service for the StatefulSet, metrics Service."""
    name, role = component.name, component.role
    server = component.pod_selector(role)

    def ports(port: Port) -> list[ServicePortArgsDict]:
        return [{"name": port.name, "port": port.number, "target_port": port.name, "protocol": "TCP"}]

    specs: list[tuple[str, str, str, ServiceSpecArgsDict]] = [
        ("service", name, role, {"type": "ClusterIP", "selector": server, "ports": ports(component.port)}),
        # Stable per-pod DNS names, published before readiness so a starting pod can be found.
        ("headless-service", headless_name(component), role, {
            "cluster_ip": "None", "publish_not_ready_addresses": True, "selector": server,
            "ports": ports(component.port)}),
        ("metrics-service", f"{name}-metrics", METRICS_PORT_NAME,
         {"type": "ClusterIP", "selector": server, "ports": ports(component.metrics_port)}),
    ]
    for resource, object_name, label, spec in specs:
        k8s.core.v1.Service(f"{name}-{resource}", metadata=component.meta(object_name, label), spec=spec,
                            opts=component.child_opts())


def headless_name(component: AnyDataComponent) -> str:
    return f"{component.name}-headless"


def stateful_set(component: AnyDataComponent, pod: Pod, *, checksum: pulumi.Input[str], grace_seconds: int,
                 skips: Sequence[ScannerException]) -> k8s.apps.v1.StatefulSet:
    """The servers (``sizing.instances``, each with its volume) and their disruption budget. Only
    data-independent fields can change in place: the selector, service name and volume claim
    template are fixed at creation, and built from names and constants only, so changing an
    unrelated setting never replaces it.
    """
    args, role = component.args, component.role
    claim = volume_claim(component.sizing.storage, component.settings.storage_class)
    spec: StatefulSetSpecArgsDict = {
        "replicas": component.sizing.instances,
        "service_name": headless_name(component),
        "selector": {"match_labels": component.pod_selector(role)},
        "pod_management_policy": "OrderedReady",
        "update_strategy": {"type": "RollingUpdate"},
        # Deleting or scaling the StatefulSet keeps the volume (the default would too, stated here).
        "persistent_volume_claim_retention_policy": {"when_deleted": "Retain", "when_scaled": "Retain"},
        "volume_claim_templates": [{"metadata": {"name": "data", "labels": component.labels(role)},
                                    "spec": claim}],
        "template": _pod_template(component, pod, checksum, grace_seconds),
    }
    statefulset = k8s.apps.v1.StatefulSet(
        f"{component.name}-statefulset",
        metadata=component.meta(component.name, role, skips=skips),
        spec=spec,
        # The claim template cannot change on a live StatefulSet (a change would mean replacing it):
        # a new storageSize applies to new volumes, and a live volume grows by expanding its
        # claim (docs/data.md). The server itself is not retained on delete: its volumes are
        # (persistentVolumeClaimRetentionPolicy), so removing it stops it and keeps the data.
        opts=component.child_opts(ignore_changes=["spec.volumeClaimTemplates"],
                                  depends_on=list(component.made_secrets), protect=args.protect_stateful),
    )
    disruption_budget(component)
    return statefulset


def _pod_template(component: AnyDataComponent, pod: Pod, checksum: pulumi.Input[str],
                  grace_seconds: int) -> PodTemplateSpecArgsDict:
    """The server's pod: a volume it does not walk on start, restarted when ``checksum`` changes."""
    pod_spec = hardened_pod_spec(component.ensure_service_account(), pod.containers, tmp_size="256Mi",
                                 volumes=pod.volumes, walk_volumes_on_start=False)
    pod_spec["termination_grace_period_seconds"] = grace_seconds
    if component.args.priority_class_name:
        pod_spec["priority_class_name"] = component.args.priority_class_name
    if component.sizing.instances > 1:
        # Replicas on other nodes and zones: one node or zone lost takes one server, not the majority.
        # Preferred, not required, so that a small cluster still runs them all.
        pod_spec["topology_spread_constraints"] = [
            {"max_skew": 1, "topology_key": key, "when_unsatisfiable": "ScheduleAnyway",
             "label_selector": {"match_labels": component.pod_selector(component.role)}}
            for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")]
    return {
        "metadata": {"labels": component.labels(component.role), "annotations": {"checksum/config": checksum}},
        "spec": pod_spec,
    }


def disruption_budget(component: AnyDataComponent) -> None:
    """Replicated servers: a drain evicts one at a time. A single server: in a protected stack a
    voluntary eviction waits for a planned restart (docs/data.md); elsewhere a drain may move it.
    """
    single = component.sizing.instances == 1
    k8s.policy.v1.PodDisruptionBudget(
        f"{component.name}-pdb",
        metadata=component.meta(component.name, component.role),
        spec={
            "max_unavailable": 0 if single and component.args.protect_stateful else 1,
            "selector": {"match_labels": component.pod_selector(component.role)},
        },
        opts=component.child_opts(),
    )


@dataclass(frozen=True)
class Peering:
    """Replicated servers talk to each other: these ports, between the server pods only."""

    ports: tuple[Port, ...]
    #: Client-facing ports beside the server port (a sentinel's), open to the same clients.
    client_ports: tuple[Port, ...] = ()
    #: Metrics ports beside the exporter's (a sentinel exporter's), open to Prometheus only.
    metrics_ports: tuple[Port, ...] = ()


def network_policy(component: AnyDataComponent, job_components: Sequence[str], peering: Peering | None = None) -> None:
    """Clients (and this component's jobs) on the server port; Prometheus on the exporter's only;
    with ``peering``, the servers to each other on its ports, in and out.
    """
    clients: list[NetworkPolicyPeerArgsDict] = [
        {"pod_selector": {"match_expressions": [
            {"key": NAME, "operator": "In", "values": [spec.name for spec in component.clients]}]}},
    ] if component.clients else []
    clients += [{"pod_selector": {"match_labels": component.pod_selector(job)}} for job in job_components]
    served = [component.port, *(peering.client_ports if peering else ())]
    metrics = [component.metrics_port, *(peering.metrics_ports if peering else ())]
    ingress: list[NetworkPolicyIngressRuleArgsDict] = [
        prometheus_scrape_rule(component.args.scraping, port.number) for port in metrics]
    if clients:  # never an empty `from`: it would admit every source
        ingress.insert(0, {"from_": clients, "ports": [{"protocol": "TCP", "port": p.number} for p in served]})
    spec: NetworkPolicySpecArgsDict = {
        "pod_selector": {"match_labels": component.pod_selector(component.role)},
        # No other egress rule: the server opens no connection (DNS has its namespace-wide policy).
        "policy_types": ["Ingress", "Egress"],
        "ingress": ingress,
    }
    if peering:
        servers: list[NetworkPolicyPeerArgsDict] = [{"pod_selector": {"match_labels": component.pod_selector(
            component.role)}}]
        ports: list[NetworkPolicyPortArgsDict] = [{"protocol": "TCP", "port": p.number} for p in peering.ports]
        ingress.append({"from_": servers, "ports": ports})
        spec["egress"] = [{"to": servers, "ports": ports}]
    k8s.networking.v1.NetworkPolicy(
        f"{component.name}-network-policy",
        metadata=component.meta(component.name, "network-policy"),
        spec=spec,
        opts=component.child_opts(),
    )


def monitor(component: AnyDataComponent) -> None:
    """The exporter's ServiceMonitor (components/scraping.py), over the metrics Service."""
    workload = MonitoredWorkload(component.name, component.namespace, component.labels(METRICS_PORT_NAME),
                                 component.pod_selector(METRICS_PORT_NAME))
    service_monitor(f"{component.name}-service-monitor", workload, ScrapeEndpoint(), component.args.scraping,
                    component.child_opts())
