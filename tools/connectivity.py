"""Connectivity: the calls the catalog declares, through the rendered NetworkPolicies.

:func:`connectivity_report` checks that every declared call (:func:`declared_calls`: a
service's ``callers`` and its ``uses`` of shared dependencies) passes the client's egress and
the server's ingress policies, computed from the rendered policies, pod labels and ports as
Kubernetes evaluates them (:class:`NetworkPolicies`). :func:`rules_allow` is the narrower
question of one policy's rules against same-namespace labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from services.catalog import CATALOG, Catalog
from tools.rendered import Object, Pod, Rendered, map_selector_matches, namespace_of, selector_matches

#: Workloads whose pods serve connections (a Job's pods are not a dependency's server).
SERVING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


class Call(NamedTuple):
    """A connection the catalog declares: ``client`` opens it to ``server``."""

    client: str
    server: str
    #: The shared dependency it reaches (PostgreSQL, Redis), or None for a call to another service.
    dependency: str | None = None

    @property
    def why(self) -> str:
        return f"uses {self.dependency}" if self.dependency else "catalog"


def declared_calls(catalog: Catalog = CATALOG) -> list[Call]:
    """Every call between services (``callers``) and to shared dependencies (``uses``) in the catalog."""
    calls = [Call(caller, name) for name in catalog for caller in catalog.callers_of(name)]
    calls += [Call(name, dependency.value, dependency.value)
              for name, spec in catalog.items() for dependency in spec.uses]
    return calls


def _effective_types(spec: Mapping[str, Any]) -> list[str]:
    """``policyTypes``, defaulted as the API server does."""
    types: list[str] | None = spec.get("policyTypes")
    return types or ["Ingress", *(["Egress"] if "egress" in spec else [])]


@dataclass
class NetworkPolicies:
    """The rendered NetworkPolicies, evaluated as Kubernetes does for one TCP connection."""

    rendered: Rendered
    policies: list[Object] = field(init=False)

    def __post_init__(self) -> None:
        self.policies = [o for o in self.rendered.objects if o.get("kind") == "NetworkPolicy"]

    def _isolating(self, pod: Pod, policy_type: str) -> list[Object]:
        return [p for p in self.policies
                if namespace_of(p) == pod.namespace and policy_type in _effective_types(p["spec"])
                and selector_matches(p["spec"].get("podSelector"), pod.labels)]

    def _peer_matches(self, peer: Mapping[str, Any], policy_namespace: str, other: Pod) -> bool:
        if "ipBlock" in peer:
            return False  # pod addresses are not known offline; our policies name pods by labels
        if "namespaceSelector" in peer:
            namespace_labels = self.rendered.labels_of_namespace(other.namespace)
            in_namespace = selector_matches(peer["namespaceSelector"], namespace_labels)
        else:
            in_namespace = other.namespace == policy_namespace
        return in_namespace and ("podSelector" not in peer or selector_matches(peer["podSelector"], other.labels))

    @staticmethod
    def _port_matches(entry: Mapping[str, Any], server: Pod, number: int) -> bool:
        if entry.get("protocol", "TCP") != "TCP":
            return False
        port = entry.get("port")
        if port is None:
            return True
        if isinstance(port, str):  # a named port is looked up in the destination pod, at either end
            return server.container_port(port) == number
        return int(port) <= number <= int(entry.get("endPort", port))

    def allows(self, direction: str, pod: Pod, peer: Pod, server: Pod, number: int) -> bool:
        """Whether ``pod``'s policies let a connection to/from ``peer`` on ``server``'s port ``number`` through."""
        policy_type, rules_key, peers_key = (("Egress", "egress", "to") if direction == "egress"
                                             else ("Ingress", "ingress", "from"))
        isolating = self._isolating(pod, policy_type)
        if not isolating:
            return True  # no policy of that type selects the pod: everything is allowed
        return any(
            (not rule.get(peers_key) or any(self._peer_matches(p, namespace_of(policy), peer) for p in rule[peers_key]))
            and (not rule.get("ports") or any(self._port_matches(entry, server, number) for entry in rule["ports"]))
            for policy in isolating for rule in policy["spec"].get(rules_key) or []
        )


@dataclass
class ConnectivityReport:
    errors: list[str] = field(default_factory=list)
    #: Calls whose both ends are rendered and were evaluated.
    checked: list[Call] = field(default_factory=list)
    #: Calls to a dependency with no server in the render (a managed server outside the cluster).
    outside: list[Call] = field(default_factory=list)


def _is_metrics(port: Mapping[str, Any]) -> bool:
    return any(word in str(port.get("name", "")) for word in ("metrics", "exporter"))


def _serving_ports(rendered: Rendered, server: Pod) -> list[int]:
    """Container ports clients reach ``server`` on: what Services selecting it forward to, metrics aside."""
    ports = set()
    for service in rendered.services:
        spec = service.get("spec") or {}
        if namespace_of(service) == server.namespace and map_selector_matches(spec.get("selector"), server.labels):
            for port in spec.get("ports") or []:
                number = server.container_port(port.get("targetPort", port.get("port")))
                if number is not None and not _is_metrics(port):
                    ports.add(number)
    return sorted(ports)


def _servers(rendered: Rendered, call: Call) -> list[Pod]:
    serving = [pod for pod in rendered.pods if pod.owner_kind in SERVING_KINDS]
    if call.dependency is None:
        return [pod for pod in serving if pod.name == call.server]
    # A dependency's server is named after it (postgres, postgresql, codai-redis...).
    return [pod for pod in serving
            if pod.name.startswith(call.server) or pod.name.endswith(f"-{call.server}")]


def connectivity_report(objects: Sequence[Object], calls: Iterable[Call | tuple[str, str]]) -> ConnectivityReport:
    """Every declared call must pass the client's egress and the server's ingress policies.

    A service may run several Deployments (stable and canary, blue and green): every pair of
    client and server pods is checked, on every port its Services forward to.
    """
    rendered = Rendered(objects)
    policies = NetworkPolicies(rendered)
    report = ConnectivityReport()
    for call in (c if isinstance(c, Call) else Call(*c) for c in calls):
        clients = [pod for pod in rendered.pods if pod.owner_kind in SERVING_KINDS and pod.name == call.client]
        servers = _servers(rendered, call)
        if not servers and call.dependency is not None:
            report.outside.append(call)
            continue
        if not clients or not servers:
            missing = call.client if not clients else call.server
            report.errors.append(f"NetworkPolicy: {call.client} may call {call.server} ({call.why}) "
                                 f"but no workload of {missing} is rendered")
            continue
        report.checked.append(call)
        for server in servers:
            ports = _serving_ports(rendered, server)
            if not ports:
                report.errors.append(f"NetworkPolicy: {call.client} may call {call.server} ({call.why}) "
                                     f"but no Service forwards to {server.owner}")
            for client in clients:
                for number in ports:
                    if not policies.allows("egress", client, server, server, number):
                        report.errors.append(f"NetworkPolicy: {call.client} may call {call.server} ({call.why}) but "
                                             f"the egress of {client.owner} does not allow port {number}")
                    if not policies.allows("ingress", server, client, server, number):
                        report.errors.append(f"NetworkPolicy: {call.client} may call {call.server} ({call.why}) but "
                                             f"the ingress of {server.owner} refuses {client.owner} on port {number}")
    report.errors = list(dict.fromkeys(report.errors))
    return report


def connectivity(objects: Sequence[Object], calls: Iterable[Call | tuple[str, str]]) -> list[str]:
    """The errors of :func:`connectivity_report`."""
    return connectivity_report(objects, calls).errors


def rules_allow(rules: Sequence[Mapping[str, Any]], direction: str, labels: Mapping[str, str], port: Any) -> bool:
    """Whether any of a policy's ``ingress`` or ``egress`` ``rules`` admits same-namespace pods with ``labels``.

    ``port`` is compared with the rules' ports as written (a name or a number). For whole
    connections between rendered pods, use :func:`connectivity`.
    """
    peers_key = "from" if direction == "ingress" else "to"
    return any(
        (not rule.get("ports") or port in [entry.get("port") for entry in rule["ports"]])
        and (not rule.get(peers_key) or any(
            "namespaceSelector" not in peer and "ipBlock" not in peer
            and selector_matches(peer.get("podSelector", {}), labels) for peer in rule[peers_key]))
        for rule in rules
    )
