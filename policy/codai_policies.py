"""The platform's invariants as Pulumi policies (CrossGuard), run by ``pulumi preview/up --policy-pack policy``.

They check what the engine is about to deploy, whatever produced it (this program, a hand-edit,
a future component), so they hold even where the program's own tests do not reach.

The engine hands ``props`` as read-only proxies (``Mapping``/``Sequence``, not ``dict``/``list``)
that raise ``UnknownValueError`` for values not known during preview; the policies only read
through ``Mapping``/``Sequence`` operations, and an unknown value ends the check (the engine
reports that the policy could not run) instead of counting as a violation.

Which stacks are production: the stack name in the URN, ``production`` unless the pack's config
says otherwise (``productionStacks`` of the ``production-replicas`` policy, set with
``--policy-pack-config``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

#: Where the pod spec sits in each workload kind's props.
WORKLOADS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
#: Pod label of the Deployment's track; a canary is a deliberate small Deployment beside the
#: stable one, which carries the replica floor.
TRACK_LABEL = "codai.io/track"
PRODUCTION_STACKS = ["production"]
MIN_PRODUCTION_REPLICAS = 2
#: The only capability restricted Pod Security lets a container add.
ALLOWED_CAPABILITIES = {"NET_BIND_SERVICE"}


def _get(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = WORKLOADS.get(resource_type)
    spec = _get(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers"):
        yield from spec.get(key) or []


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::...`` -> ``<stack>``."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


def is_production(args: ResourceValidationArgs) -> bool:
    stacks: Sequence[str] = args.get_config().get("productionStacks") or PRODUCTION_STACKS
    return stack_of(args.urn) in stacks


def _name(container: Mapping[str, Any]) -> str:
    return f"container {container.get('name')}"


# --- resource policies ---------------------------------------------------------------------------


def image_is_pinned(image: str) -> bool:
    """A digest, or a tag other than ``latest`` (a ``:port`` in the registry host is not a tag)."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest") and not last.endswith(":")


def _images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(pod_spec(args.resource_type, args.props) or {}):
        image = str(container.get("image") or "")
        if not image_is_pinned(image):
            report(f"{_name(container)}: image {image!r} is not pinned (a tag other than latest, or a digest)", None)


def _resources_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(pod_spec(args.resource_type, args.props) or {}):
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            missing = sorted({"cpu", "memory"} - set(resources.get(kind) or {}))
            if missing:
                report(f"{_name(container)}: {kind} missing {missing}", None)


def _non_root(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    pod = spec.get("securityContext") or {}
    for container in containers(spec):
        context = container.get("securityContext") or {}
        non_root = context.get("runAsNonRoot", pod.get("runAsNonRoot"))
        user = context.get("runAsUser", pod.get("runAsUser"))
        if non_root is not True:
            report(f"{_name(container)}: runAsNonRoot is not set (neither on the container nor on the pod)", None)
        if user == 0:
            report(f"{_name(container)}: runs as UID 0", None)


def _no_privilege(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            report(f"{field} is set: the pods would share the node's namespaces", None)
    for container in containers(spec):
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            report(f"{_name(container)}: privileged", None)
        if context.get("allowPrivilegeEscalation") is not False:
            report(f"{_name(container)}: allowPrivilegeEscalation is not false", None)
        added = sorted(set(_get(context, "capabilities", "add") or []) - ALLOWED_CAPABILITIES)
        if added:
            report(f"{_name(container)}: adds capabilities {added}", None)


def _production_replicas(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (HPA, DEPLOYMENT) or not is_production(args):
        return
    spec = args.props.get("spec") or {}
    if args.resource_type == HPA:
        minimum = int(spec.get("minReplicas", 1))
        if minimum < MIN_PRODUCTION_REPLICAS:
            report(f"minReplicas {minimum} in production; at least {MIN_PRODUCTION_REPLICAS} survive a node loss", None)
        return
    if _get(spec, "template", "metadata", "labels", TRACK_LABEL) == "canary":
        return
    replicas = int(spec.get("replicas", 1))  # Kubernetes' default when unset
    if replicas < MIN_PRODUCTION_REPLICAS:
        report(f"replicas {replicas} in production; at least {MIN_PRODUCTION_REPLICAS} survive a node loss", None)


# --- stack policies --------------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; ``{}`` selects every pod (as in a PodDisruptionBudget of policy/v1).

    (The pack runs in its own venv, without the repository: it cannot share tools/rendered.py.
    tests/test_policy_selector_agreement.py holds the two copies to the same answers.)
    """
    if selector is None:
        return False
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items()) and all(
        _expression_holds(e, labels) for e in selector.get("matchExpressions") or [])


def _expression_holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, values = expression["key"], expression.get("values") or []
    holds: dict[str, bool] = {
        "In": key in labels and labels[key] in values,
        "NotIn": key not in labels or labels[key] not in values,
        "Exists": key in labels,
        "DoesNotExist": key not in labels,
    }
    return holds[expression["operator"]]


def _pdb_for_every_autoscaled_deployment(args: StackValidationArgs, report: ReportViolation) -> None:
    def namespace(props: Mapping[str, Any]) -> Any:
        return _get(props, "metadata", "namespace")

    deployments = {(namespace(r.props), _get(r.props, "metadata", "name")): r.props
                   for r in args.resources if r.resource_type == DEPLOYMENT}
    budgets = [r.props for r in args.resources if r.resource_type == PDB]
    for hpa in (r for r in args.resources if r.resource_type == HPA):
        target = _get(hpa.props, "spec", "scaleTargetRef") or {}
        deployment = deployments.get((namespace(hpa.props), target.get("name")))
        if target.get("kind") != "Deployment" or deployment is None:
            continue
        labels = _get(deployment, "spec", "template", "metadata", "labels") or {}
        if not any(namespace(b) == namespace(deployment) and selector_matches(_get(b, "spec", "selector"), labels)
                   for b in budgets):
            report(f"Deployment {target.get('name')} is autoscaled but no PodDisruptionBudget covers its pods",
                   hpa.urn)


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    ResourceValidationPolicy("images-pinned", "Images are pinned: a tag other than latest, or a digest.",
                             _images_pinned),
    ResourceValidationPolicy("resources-set", "Every container requests and limits CPU and memory.",
                             _resources_set),
    ResourceValidationPolicy("non-root", "Containers run as a non-root user.", _non_root),
    ResourceValidationPolicy("no-privilege",
                             "No privileged containers, privilege escalation, added capabilities or host namespaces.",
                             _no_privilege),
    ResourceValidationPolicy(
        "production-replicas", "Production runs at least 2 replicas of every service (HPA floor and Deployments).",
        _production_replicas,
        config_schema=PolicyConfigSchema({"productionStacks": {
            "type": "array", "items": {"type": "string"}, "default": PRODUCTION_STACKS,
            "description": "Stacks held to the production replica floor.",
        }}),
    ),
    StackValidationPolicy("pdb-for-autoscaled", "Every autoscaled Deployment has a PodDisruptionBudget.",
                          _pdb_for_every_autoscaled_deployment),
]
