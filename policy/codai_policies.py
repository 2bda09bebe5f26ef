"""The platform's invariants as Pulumi policies.

They check what the engine is about to deploy, whatever produced it (this program, a hand-edit,
a future component), so they hold even where the program's own tests do not reach.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

WORKLOADS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = WORKLOADS.get(resource_type)
    if path is None:
        return None
    value: Any = props
    for key in path:
        value = value.get(key, {}) if isinstance(value, Mapping) else {}
    return value if isinstance(value, Mapping) else None


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from spec.get("initContainers", []) or []
    yield from spec.get("containers", []) or []


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::...`` -> ``<stack>``."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


def is_production(urn: str) -> bool:
    stack = stack_of(urn)
    return stack == "production" or stack.startswith("production-")


# --- resource policies ---------------------------------------------------------------------


def _images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    for container in containers(spec or {}):
        image = str(container.get("image", ""))
        name_part = image.rsplit("/", 1)[-1]
        if "@sha256:" not in image and (":" not in name_part or name_part.endswith(":latest")):
            report(f"container {container.get('name')}: image {image!r} is not pinned (a tag other than "
                   "latest, or a digest)", None)


def _resources_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    for container in containers(spec or {}):
        resources = container.get("resources", {}) or {}
        for kind in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(kind, {}) or {})
            if kind == "limits":
                missing.discard("cpu")  # CPU limits are optional: throttling, not eviction
            if missing:
                report(f"container {container.get('name')}: {kind} missing {sorted(missing)}", None)


def _non_root(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    pod_level = (spec.get("securityContext") or {}).get("runAsNonRoot") is True
    for container in containers(spec):
        context = container.get("securityContext") or {}
        if context.get("runAsNonRoot") is False or (not pod_level and context.get("runAsNonRoot") is not True):
            report(f"container {container.get('name')}: runAsNonRoot is not set", None)
        if context.get("runAsUser") == 0:
            report(f"container {container.get('name')}: runs as UID 0", None)


def _no_privilege(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            report(f"{field} is set: pods share the node's namespaces", None)
    for container in containers(spec):
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            report(f"container {container.get('name')}: privileged", None)
        if context.get("allowPrivilegeEscalation") is not False:
            report(f"container {container.get('name')}: allowPrivilegeEscalation is not false", None)


def _production_replicas(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_production(args.urn):
        return
    spec = args.props.get("spec", {}) or {}
    if args.resource_type == HPA and int(spec.get("minReplicas", 1)) < 2:
        report(f"minReplicas {spec.get('minReplicas', 1)} in production; at least 2 survive a node loss", None)
    if args.resource_type == "kubernetes:apps/v1:Deployment" and "replicas" in spec and int(spec["replicas"]) < 2 \
            and not str(args.props.get("metadata", {}).get("name", "")).endswith("-canary"):
        report(f"replicas {spec['replicas']} in production; at least 2 survive a node loss", None)


# --- stack policies --------------------------------------------------------------------------


def _pdb_for_every_autoscaled_deployment(args: StackValidationArgs, report: ReportViolation) -> None:
    templates = {
        str(r.props["metadata"]["name"]): r.props["spec"]["template"]["metadata"].get("labels", {})
        for r in args.resources if r.resource_type == "kubernetes:apps/v1:Deployment"
    }
    budgets = [r.props["spec"]["selector"].get("matchLabels", {}) for r in args.resources if r.resource_type == PDB]
    for hpa in (r for r in args.resources if r.resource_type == HPA):
        target = hpa.props["spec"]["scaleTargetRef"]
        labels = templates.get(str(target["name"]))
        if labels is None:
            continue
        if not any(selector and all(labels.get(k) == v for k, v in selector.items()) for selector in budgets):
            report(f"Deployment {target['name']} is autoscaled but no PodDisruptionBudget covers its pods", hpa.urn)


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    ResourceValidationPolicy("images-pinned", "Images are pinned: a tag other than latest, or a digest.",
                             _images_pinned),
    ResourceValidationPolicy("resources-set", "Every container requests CPU and memory and limits memory.",
                             _resources_set),
    ResourceValidationPolicy("non-root", "Containers run as a non-root user.", _non_root),
    ResourceValidationPolicy("no-privilege", "No privileged containers, escalation or host namespaces.",
                             _no_privilege),
    ResourceValidationPolicy("production-replicas", "Production runs at least 2 replicas of every service.",
                             _production_replicas),
    StackValidationPolicy("pdb-for-autoscaled", "Every autoscaled Deployment has a PodDisruptionBudget.",
                          _pdb_for_every_autoscaled_deployment),
]
