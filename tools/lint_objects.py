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
- a Secret a CloudNativePG ``Cluster`` or ``Pooler`` names (managed roles' ``passwordSecret``,
  object-store credentials) and nobody makes.

The pods and Services the CloudNativePG operator makes from the rendered Clusters and Poolers
count as rendered (tools/operator_pods.py): a selector may match them, a Service forward to them.

NetworkPolicies that cut a service off from a callee or dependency it declares are checked by
tools/connectivity.py; both read the render through tools/rendered.py.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from tools.operator_pods import secret_references, with_operator_objects
from tools.rendered import Object, Pod, Rendered, map_selector_matches, namespace_of, selector_matches, where

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


def _made(rendered: Rendered, namespace: str, kind: str, name: str, made_elsewhere: Collection[str]) -> bool:
    """Rendered, or a Secret that cert-manager writes or the stack says someone else creates."""
    return rendered.has(kind, namespace, name) or (
        kind == "Secret" and (name in rendered.made_by_cert_manager(namespace) or name in made_elsewhere))


def lint(objects: Sequence[Object], made_elsewhere: Collection[str] = ()) -> list[str]:
    """Every reference between ``objects`` that points at nothing (see the module docstring).

    ``made_elsewhere`` are Secrets the stack file names and someone else creates (the admin
    credentials of a managed database, object-store keys): a pod or a Cluster may reference them.
    """
    rendered = with_operator_objects(objects)
    errors: list[str] = []
    for obj in objects:
        rule = RULES.get(str(obj.get("kind")))
        if rule:
            errors += rule(obj, rendered)
    for pod in rendered.pods:
        errors += [f"{pod.owner}: {f'{how} ' if how else ''}{kind} {name} is not rendered"
                   for how, kind, name in _pod_references(pod)
                   if not _made(rendered, pod.namespace, kind, name, made_elsewhere)]
    for obj in objects:
        errors += [f"{where(obj)}: {how} Secret {name} is not rendered" for how, name in secret_references(obj)
                   if not _made(rendered, namespace_of(obj), "Secret", name, made_elsewhere)]
    return errors
