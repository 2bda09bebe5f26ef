"""Connectivity: the calls the catalog declares, through the rendered NetworkPolicies.

:func:`connectivity_report` checks that every declared call (:func:`declared_calls`: a
service's ``callers`` and its ``uses`` of shared dependencies) passes the client's egress and
the server's ingress policies, computed from the rendered policies, pod labels and ports as
Kubernetes evaluates them (:class:`NetworkPolicies`). :func:`rules_allow` is the narrower
question of one policy's rules against same-namespace labels.

The pods and Services the CloudNativePG operator makes count as rendered (tools/operator_pods.py,
the same recipe as the object lint's). A client of PostgreSQL in the cluster connects to its tier's
Pooler (the host of its ``DATABASE_URL``, ``<pooler>.<namespace>.svc``), never to the instances:
the call is checked from the client to that Pooler's PgBouncers, and on from them to the instances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from components.data.postgres_cluster import pooler_name
from components.labels import TIER_LABEL
from services.catalog import CATALOG, Catalog
from services.tiers import Tier
from tools.operator_pods import UPSTREAM_PORT, is_pgbouncer, upstream, with_operator_objects
from tools.rendered import Object, Pod, Rendered, map_selector_matches, namespace_of, selector_matches

#: Workloads whose pods serve connections (a Job's pods are not a dependency's server; the
#: operator makes PostgreSQL's instances as bare Pods).
SERVING_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Pod")


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


def _service_ports(service: Object, server: Pod) -> set[int]:
    """Container ports of ``server`` that ``service`` forwards to, metrics aside."""
    numbers = {server.container_port(port.get("targetPort", port.get("port")))
               for port in (service.get("spec") or {}).get("ports") or [] if not _is_metrics(port)}
    return {number for number in numbers if number is not None}


def _serving_ports(rendered: Rendered, server: Pod) -> list[int]:
    """Container ports clients reach ``server`` on: what Services selecting it forward to, metrics aside."""
    ports: set[int] = set()
    for service in rendered.services:
        spec = service.get("spec") or {}
        if namespace_of(service) == server.namespace and map_selector_matches(spec.get("selector"), server.labels):
            ports |= _service_ports(service, server)
    return sorted(ports)


def _servers(rendered: Rendered, call: Call) -> list[Pod]:
    serving = [pod for pod in rendered.pods if pod.owner_kind in SERVING_KINDS]
    if call.dependency is None:
        return [pod for pod in serving if pod.name == call.server]
    # A dependency's server is named after it (postgres, postgresql, codai-redis...).
    return [pod for pod in serving
            if pod.name.startswith(call.server) or pod.name.endswith(f"-{call.server}")]


class Leg(NamedTuple):
    """One connection a call opens: ``source`` to ``server`` on each of ``ports``."""

    source: Pod
    server: Pod
    ports: list[int]


def _pooler_host(client: Pod) -> str:
    """The Service the client's DATABASE_URL names: its tier's Pooler, by the name the program gives it
    (``client_host`` of components/data/postgres.py); the render redacts the URL itself."""
    tier = client.labels.get(TIER_LABEL, "")
    return pooler_name(Tier(tier)) if tier in {t.value for t in Tier} else f"(no Pooler for tier {tier!r})"


def _legs(rendered: Rendered, client: Pod, servers: list[Pod]) -> tuple[list[Leg], list[str]]:
    """The connections ``client`` opens to ``servers``, and why some cannot be opened.

    Directly to each server, on its Services' ports; or, when the servers are CloudNativePG's
    PgBouncers, to those of its tier's Pooler on that Service's ports, and from them to the instances.
    """
    if not any(is_pgbouncer(server) for server in servers):
        return [Leg(client, server, _serving_ports(rendered, server)) for server in servers], []
    host = _pooler_host(client)
    service = rendered.service(client.namespace, host)
    if service is None:
        return [], [f"its Pooler {host} is not rendered"]
    pgbouncers = [pod for pod in servers if pod.namespace == client.namespace
                  and map_selector_matches(service["spec"].get("selector"), pod.labels)]
    legs = [Leg(client, pgbouncer, sorted(_service_ports(service, pgbouncer))) for pgbouncer in pgbouncers]
    problems = [f"no instance of the Cluster of {pgbouncer.owner} is rendered"
                for pgbouncer in pgbouncers if not upstream(rendered, pgbouncer)]
    legs += [Leg(pgbouncer, instance, [number])
             for pgbouncer in pgbouncers for instance in upstream(rendered, pgbouncer)
             if (number := instance.container_port(UPSTREAM_PORT)) is not None]
    return legs, problems


def _refusals(policies: NetworkPolicies, leg: Leg) -> list[str]:
    if not leg.ports:
        return [f"no Service forwards to {leg.server.owner}"]
    refused = []
    for number in leg.ports:
        if not policies.allows("egress", leg.source, leg.server, leg.server, number):
            refused.append(f"the egress of {leg.source.owner} does not allow port {number}")
        if not policies.allows("ingress", leg.server, leg.source, leg.server, number):
            refused.append(f"the ingress of {leg.server.owner} refuses {leg.source.owner} on port {number}")
    return refused


def connectivity_report(objects: Sequence[Object], calls: Iterable[Call | tuple[str, str]]) -> ConnectivityReport:
    """Every declared call must pass the client's egress and the server's ingress policies.

    A service may run several Deployments (stable and canary, blue and green): every pair of
    client and server pods is checked, on every port its Services forward to.
    """
    rendered = with_operator_objects(objects)
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
        for client in clients:
            legs, problems = _legs(rendered, client, servers)
            problems += [refusal for leg in legs for refusal in _refusals(policies, leg)]
            report.errors += [f"NetworkPolicy: {call.client} may call {call.server} ({call.why}) but {problem}"
                              for problem in problems]
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
