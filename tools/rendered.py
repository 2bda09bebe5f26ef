"""The rendered objects as the lint and the connectivity check read them, and label selectors.

:class:`Rendered` indexes a render (pod templates of every workload kind, object keys, Services,
namespace labels, Secrets cert-manager writes); :class:`Pod` is one workload's pod template;
:func:`selector_matches` and :func:`map_selector_matches` match labels as Kubernetes does.
The policy pack keeps its own copy of :func:`selector_matches` (policy/codai_policies.py);
tests/test_policy_selector_agreement.py holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Object = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Annotations that make cert-manager's ingress-shim issue an Ingress's TLS Secrets.
CERT_MANAGER_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")


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
