"""Cross-object lint: references between rendered objects that no schema can check.

Every rule works on whatever the render contains (any kind, any number of workloads), so
components added later are checked without changes here:

- a Service, PodDisruptionBudget, NetworkPolicy ``podSelector``, ServiceMonitor or PodMonitor
  whose selector matches nothing it should;
- a Service ``targetPort`` (named or numeric) that a selected container does not expose;
- a HorizontalPodAutoscaler ``scaleTargetRef`` to an object that is not rendered;
- an Ingress backend to a missing Service or Service port, a TLS Secret nobody makes;
- a ConfigMap, Secret or ServiceAccount used by a pod (``envFrom``, ``env``, volumes) and not
  rendered; Secrets that cert-manager writes (Certificate ``secretName``, TLS of an Ingress
  annotated for cert-manager) count as made;
- :func:`connectivity`: a NetworkPolicy (at either end) that cuts a service off from a callee
  or dependency it declares, computed from the rendered policies, pod labels and ports as
  Kubernetes evaluates them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from services.catalog import CATALOG, Catalog

Object = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Annotations that make cert-manager's ingress-shim issue an Ingress's TLS Secrets.
CERT_MANAGER_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")
#: Workloads whose pods serve connections (a Job's pods are not a dependency's server).
SERVING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


# --- label selectors ------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``LabelSelector`` (matchLabels and matchExpressions); ``{}`` selects everything."""
    if selector is None:
        return False
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items()) and all(
        _expression_holds(expression, labels) for expression in selector.get("matchExpressions") or [])


def _expression_holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    holds: dict[str, bool] = {
        "In": key in labels and labels[key] in values,
        "NotIn": key not in labels or labels[key] not in values,
        "Exists": key in labels,
        "DoesNotExist": key not in labels,
    }
    return holds[operator]


def map_selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service's plain ``selector`` map; an empty one selects nothing (endpoints are managed by hand)."""
    return bool(selector) and all(labels.get(key) == value for key, value in (selector or {}).items())


# --- what the render contains -----------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """The pod template of a workload."""

    owner: str
    owner_kind: str
    namespace: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.labels.get(NAME_LABEL, "")

    def container_port(self, port: int | str) -> int | None:
        """The number a named or numeric port stands for in this pod, or None when no container exposes it."""
        for container in self.spec.get("containers") or []:
            for entry in container.get("ports") or []:
                if port in (entry.get("name"), entry.get("containerPort")):
                    return int(entry["containerPort"])
        return None


def _template(obj: Object) -> Mapping[str, Any] | None:
    spec = obj.get("spec") or {}
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        template: Mapping[str, Any] | None = spec.get("template")
        return template
    if obj.get("kind") == "CronJob":
        cron_template: Mapping[str, Any] | None = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        return cron_template
    if obj.get("kind") == "Pod":
        return obj
    return None


def namespace_of(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def where(obj: Object) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


@dataclass
class Rendered:
    """The objects of a render, indexed the way the rules look them up."""

    objects: Sequence[Object]
    pods: list[Pod] = field(init=False)
    keys: set[tuple[str, str, str]] = field(init=False)
    services: list[Object] = field(init=False)
    namespace_labels: dict[str, dict[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.pods = []
        for obj in self.objects:
            template = _template(obj)
            if template is not None:
                self.pods.append(Pod(where(obj), str(obj["kind"]), namespace_of(obj),
                                     (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {}))
        self.keys = {(str(o.get("kind")), namespace_of(o), str(o["metadata"].get("name"))) for o in self.objects}
        self.services = [o for o in self.objects if o.get("kind") == "Service"]
        self.namespace_labels = {
            str(o["metadata"]["name"]): {**(o["metadata"].get("labels") or {}),
                                         NAMESPACE_NAME_LABEL: str(o["metadata"]["name"])}
            for o in self.objects if o.get("kind") == "Namespace"
        }

    def has(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self.keys

    def pods_selected(self, namespace: str, selector: Mapping[str, Any] | None) -> list[Pod]:
        return [pod for pod in self.pods if pod.namespace == namespace and selector_matches(selector, pod.labels)]

    def service(self, namespace: str, name: str) -> Object | None:
        return next((s for s in self.services
                     if namespace_of(s) == namespace and s["metadata"].get("name") == name), None)

    def labels_of_namespace(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace, {NAMESPACE_NAME_LABEL: namespace})

    def made_by_cert_manager(self, namespace: str) -> set[str]:
        """Secrets cert-manager writes in ``namespace``: Certificates and annotated Ingresses' TLS."""
        made = {str(o["spec"]["secretName"]) for o in self.objects if o.get("kind") == "Certificate"
                and namespace_of(o) == namespace and "secretName" in o.get("spec", {})}
        for ingress in (o for o in self.objects if o.get("kind") == "Ingress" and namespace_of(o) == namespace):
            if any(key in (ingress["metadata"].get("annotations") or {}) for key in CERT_MANAGER_ANNOTATIONS):
                made |= {str(tls["secretName"]) for tls in ingress["spec"].get("tls") or [] if "secretName" in tls}
        return made


# --- rules, one per kind ----------------------------------------------------------------------

Rule = Callable[[Object, Rendered], list[str]]


def _service_rule(obj: Object, rendered: Rendered) -> list[str]:
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName" or not spec.get("selector"):
        return []  # no pods behind it by design
    chosen = [pod for pod in rendered.pods
              if pod.namespace == namespace_of(obj) and map_selector_matches(spec["selector"], pod.labels)]
    if not chosen:
        return [f"{where(obj)}: selector {spec['selector']} matches no pod"]
    errors = []
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        errors += [f"{where(obj)}: targetPort {target!r} is not a port of {pod.owner}'s containers"
                   for pod in chosen if pod.container_port(target) is None]
    return errors


def _pdb_rule(obj: Object, rendered: Rendered) -> list[str]:
    if rendered.pods_selected(namespace_of(obj), obj["spec"].get("selector")):
        return []
    return [f"{where(obj)}: selector matches no pod"]


def _network_policy_rule(obj: Object, rendered: Rendered) -> list[str]:
    selector = obj["spec"].get("podSelector") or {}
    if not selector or rendered.pods_selected(namespace_of(obj), selector):
        return []  # {} is every pod of the namespace: the default deny and the DNS policy
    return [f"{where(obj)}: podSelector matches no pod"]


def _hpa_rule(obj: Object, rendered: Rendered) -> list[str]:
    target = obj["spec"]["scaleTargetRef"]
    if rendered.has(target["kind"], namespace_of(obj), target["name"]):
        return []
    return [f"{where(obj)}: scaleTargetRef {target['kind']}/{target['name']} is not rendered"]


def _ingress_rule(obj: Object, rendered: Rendered) -> list[str]:
    spec, namespace = obj.get("spec") or {}, namespace_of(obj)
    backends = [path["backend"] for rule in spec.get("rules") or []
                for path in (rule.get("http") or {}).get("paths") or []]
    if "defaultBackend" in spec:
        backends.append(spec["defaultBackend"])
    errors = []
    for backend in (b["service"] for b in backends if "service" in b):
        service = rendered.service(namespace, backend["name"])
        if service is None:
            errors.append(f"{where(obj)}: backend Service {backend['name']} is not rendered")
            continue
        port = backend["port"].get("name", backend["port"].get("number"))
        if not any(port in (p.get("name"), p.get("port")) for p in service["spec"].get("ports") or []):
            errors.append(f"{where(obj)}: Service {backend['name']} has no port {port!r}")
    made = rendered.made_by_cert_manager(namespace)
    errors += [f"{where(obj)}: TLS Secret {tls['secretName']} is neither rendered nor made by cert-manager"
               for tls in spec.get("tls") or []
               if "secretName" in tls and tls["secretName"] not in made
               and not rendered.has("Secret", namespace, tls["secretName"])]
    return errors


def _monitored_namespaces(obj: Object) -> list[str] | None:
    """Namespaces a ServiceMonitor or PodMonitor looks in (None: all); its own by default."""
    chosen = obj["spec"].get("namespaceSelector") or {}
    return None if chosen.get("any") else (chosen.get("matchNames") or [namespace_of(obj)])


def _service_monitor_rule(obj: Object, rendered: Rendered) -> list[str]:
    spec = obj["spec"]
    namespaces = _monitored_namespaces(obj)
    chosen = [s for s in rendered.services if (namespaces is None or namespace_of(s) in namespaces)
              and selector_matches(spec.get("selector"), s["metadata"].get("labels") or {})]
    if not chosen:
        return [f"{where(obj)}: selects no Service"]
    names = {p.get("name") for s in chosen for p in s["spec"].get("ports") or []}
    return [f"{where(obj)}: no selected Service has a port named {endpoint['port']!r}"
            for endpoint in spec.get("endpoints") or [] if "port" in endpoint and endpoint["port"] not in names]


def _pod_monitor_rule(obj: Object, rendered: Rendered) -> list[str]:
    spec = obj["spec"]
    namespaces = _monitored_namespaces(obj)
    chosen = [pod for pod in rendered.pods if (namespaces is None or pod.namespace in namespaces)
              and selector_matches(spec.get("selector"), pod.labels)]
    if not chosen:
        return [f"{where(obj)}: selector matches no pod"]
    return [f"{where(obj)}: no selected pod has a container port named {endpoint['port']!r}"
            for endpoint in spec.get("podMetricsEndpoints") or []
            if "port" in endpoint and all(pod.container_port(endpoint["port"]) is None for pod in chosen)]


RULES: dict[str, Rule] = {
    "Service": _service_rule,
    "PodDisruptionBudget": _pdb_rule,
    "NetworkPolicy": _network_policy_rule,
    "HorizontalPodAutoscaler": _hpa_rule,
    "Ingress": _ingress_rule,
    "ServiceMonitor": _service_monitor_rule,
    "PodMonitor": _pod_monitor_rule,
}


def _pod_references(pod: Pod) -> list[tuple[str, str, str]]:
    """(how, kind, name) of every ConfigMap, Secret and ServiceAccount the pod needs."""
    wanted: list[tuple[str, str, str]] = []
    spec = pod.spec
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            wanted += [("envFrom", kind, source[key]["name"])
                       for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")) if key in source]
        for variable in container.get("env") or []:
            value_from = variable.get("valueFrom") or {}
            wanted += [("env", kind, value_from[key]["name"])
                       for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef"))
                       if key in value_from]
    for volume in spec.get("volumes") or []:
        sources = [volume, *((volume.get("projected") or {}).get("sources") or [])]
        for source in sources:
            if "configMap" in source:
                wanted.append(("volume", "ConfigMap", source["configMap"]["name"]))
            if "secret" in source:
                secret = source["secret"]
                wanted.append(("volume", "Secret", secret.get("secretName") or secret.get("name")))
    account = spec.get("serviceAccountName")
    if account and account != "default":  # every namespace has its own `default`
        wanted.append(("", "ServiceAccount", account))
    return wanted


def lint(objects: Sequence[Object], made_elsewhere: Collection[str] = ()) -> list[str]:
    """Every reference between ``objects`` that points at nothing (see the module docstring).

    ``made_elsewhere`` are Secrets the stack file names and someone else creates (the admin
    credentials of a managed database, object-store keys): a pod may reference them.
    """
    rendered = Rendered(objects)
    errors: list[str] = []
    for obj in objects:
        rule = RULES.get(str(obj.get("kind")))
        if rule:
            errors += rule(obj, rendered)
    for pod in rendered.pods:
        made = rendered.made_by_cert_manager(pod.namespace)
        for how, kind, name in _pod_references(pod):
            if rendered.has(kind, pod.namespace, name) or (kind == "Secret" and (name in made
                                                                                  or name in made_elsewhere)):
                continue
            errors.append(f"{pod.owner}: {f'{how} ' if how else ''}{kind} {name} is not rendered")
    return errors


# --- connectivity -----------------------------------------------------------------------------


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
