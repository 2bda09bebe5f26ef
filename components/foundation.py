"""The shared foundation: namespace with Pod Security Admission, quota, limits, network and access policy.

PodSecurityPolicy was removed in Kubernetes 1.25; its replacement is Pod Security Admission,
configured by namespace labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgsDict, SubjectArgsDict

from components.base import PlatformComponent
from components.labels import PLATFORM_TIER, labels, metadata
from components.network import dns_egress_rule
from services.tiers import TIER_POLICIES, Tier
from settings.environment import RbacSettings, ResolvedQuota, Subject

PLATFORM_NAME = "codai-platform"

#: The CloudNativePG objects the program declares (docs/data.md); the operator makes the rest.
CNPG_RESOURCES = ["clusters", "poolers", "databases", "scheduledbackups"]

#: What CI may change. Deliberately no wildcard: a new kind must be added here on purpose.
DEPLOYER_RULES: list[PolicyRuleArgsDict] = [
    {"api_groups": [""], "resources": ["configmaps", "secrets", "services", "serviceaccounts",
                                        "persistentvolumeclaims"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": ["apps"], "resources": ["deployments", "statefulsets"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": ["batch"], "resources": ["jobs", "cronjobs"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": ["autoscaling"], "resources": ["horizontalpodautoscalers"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": ["policy"], "resources": ["poddisruptionbudgets"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules",
                                                             "alertmanagerconfigs"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": ["postgresql.cnpg.io"], "resources": CNPG_RESOURCES,
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"api_groups": [""], "resources": ["pods", "pods/log", "events", "endpoints"], "verbs": ["get", "list", "watch"]},
    {"api_groups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
]

#: What people may read. No Secrets: reading one is reading a password.
VIEWER_RULES: list[PolicyRuleArgsDict] = [
    {"api_groups": [""], "resources": ["configmaps", "services", "endpoints", "pods", "pods/log", "events",
                                        "serviceaccounts", "persistentvolumeclaims", "resourcequotas",
                                        "limitranges"],
     "verbs": ["get", "list", "watch"]},
    {"api_groups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"],
     "verbs": ["get", "list", "watch"]},
    {"api_groups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
    {"api_groups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get", "list", "watch"]},
    {"api_groups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list", "watch"]},
    {"api_groups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"],
     "verbs": ["get", "list", "watch"]},
    {"api_groups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules",
                                                             "alertmanagerconfigs"],
     "verbs": ["get", "list", "watch"]},
    # Backups too: the records the ScheduledBackup makes, which say whether the last one worked.
    {"api_groups": ["postgresql.cnpg.io"], "resources": [*CNPG_RESOURCES, "backups"],
     "verbs": ["get", "list", "watch"]},
]


@dataclass(frozen=True, kw_only=True)
class FoundationArgs:
    """What the namespace-wide objects are built from (the stack's ``environment`` keys, resolved)."""

    namespace: str
    #: Pod Security Admission's policy version: the oldest Kubernetes the stack supports (``1.30``).
    pod_security_version: str
    #: Pulumi ``protect`` on the namespace: deleting it would delete the databases in it.
    protect_stateful: bool
    quota: ResolvedQuota
    rbac: RbacSettings


class Foundation(PlatformComponent):
    """Namespace, PSA, ResourceQuota, LimitRange, default-deny networking, RBAC, PriorityClasses."""

    namespace: k8s.core.v1.Namespace
    priority_classes: dict[Tier, str]

    def __init__(self, name: str, args: FoundationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("codai:platform:Foundation", name, opts)
        self._ns = args.namespace
        self.namespace = self._namespace(name, args)
        self._quota_and_limits(name, args.quota)
        self._default_network_policies(name)
        for role, rules, subjects in (("deployer", DEPLOYER_RULES, args.rbac.deployers),
                                      ("viewer", VIEWER_RULES, args.rbac.viewers)):
            self._role_with_binding(f"{name}-{role}", f"codai-{role}", rules, subjects)
        self.priority_classes = self._priority_classes(name)
        self.register_outputs({"namespace": self.namespace.metadata.name})

    def _meta(self, object_name: str, component: str, namespaced: bool = True) -> ObjectMetaArgsDict:
        return metadata(object_name, self._ns if namespaced else None, labels(PLATFORM_NAME, component, PLATFORM_TIER))

    def _after_namespace(self) -> pulumi.ResourceOptions:
        """A namespaced object's options: it cannot be created before its namespace."""
        return self.child_opts(depends_on=[self.namespace])

    def _namespace(self, name: str, args: FoundationArgs) -> k8s.core.v1.Namespace:
        psa_version = f"v{args.pod_security_version}"
        pod_security = {
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", psa_version))
        }
        namespace_meta = metadata(self._ns, None,
                                  {**labels(PLATFORM_NAME, "namespace", PLATFORM_TIER), **pod_security})
        # Deleting the namespace deletes everything in it, databases included.
        return k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=namespace_meta,
            opts=self.child_opts(protect=args.protect_stateful, retain_on_delete=True),
        )

    def _quota_and_limits(self, name: str, quota: ResolvedQuota) -> None:
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=self._meta("codai-quota", "quota"),
            spec={"hard": {
                "requests.cpu": str(quota.requests_cpu),
                "requests.memory": str(quota.requests_memory),
                "limits.memory": str(quota.limits_memory),
                "requests.storage": str(quota.requests_storage),
                "pods": str(quota.pods),
                "persistentvolumeclaims": str(quota.persistent_volume_claims),
            }},
            opts=self._after_namespace(),
        )
        # Defaults for any container that forgets its resources (a quota rejects such pods otherwise).
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=self._meta("codai-limits", "quota"),
            spec={"limits": [{
                "type": "Container",
                "default_request": {"cpu": "100m", "memory": "128Mi"},
                "default": {"cpu": "500m", "memory": "256Mi"},
                "max": {"memory": "8Gi"},
            }]},
            opts=self._after_namespace(),
        )

    def _default_network_policies(self, name: str) -> None:
        # Zero trust: nothing in or out unless a service's own policy allows it.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=self._meta("default-deny-all", "network-policy"),
            spec={"pod_selector": {}, "policy_types": ["Ingress", "Egress"]},
            opts=self._after_namespace(),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-dns",
            metadata=self._meta("allow-dns-egress", "network-policy"),
            spec={"pod_selector": {}, "policy_types": ["Egress"], "egress": [dns_egress_rule()]},
            opts=self._after_namespace(),
        )

    def _priority_classes(self, name: str) -> dict[Tier, str]:
        """One PriorityClass per tier (cluster-wide, so named after the namespace); their names by tier."""
        names: dict[Tier, str] = {}
        for tier, policy in TIER_POLICIES.items():
            class_name = f"{self._ns}-{tier.value}"
            k8s.scheduling.v1.PriorityClass(
                f"{name}-priority-{tier.value}",
                metadata=self._meta(class_name, "priority-class", namespaced=False),
                value=policy.priority,
                global_default=False,
                preemption_policy="PreemptLowerPriority",
                description=f"Codai {tier.value} tier services in namespace {self._ns}",
                opts=self.child_opts(),
            )
            names[tier] = class_name
        return names

    def _role_with_binding(
        self, resource_name: str, role_name: str, rules: list[PolicyRuleArgsDict], subjects: list[Subject]
    ) -> None:
        k8s.rbac.v1.Role(f"{resource_name}-role", metadata=self._meta(role_name, "rbac"), rules=rules,
                         opts=self._after_namespace())
        k8s.rbac.v1.RoleBinding(
            f"{resource_name}-binding",
            metadata=self._meta(role_name, "rbac"),
            role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            subjects=[_subject(s) for s in subjects],
            opts=self._after_namespace(),
        )


def _subject(subject: Subject) -> SubjectArgsDict:
    if subject.namespace:  # a ServiceAccount
        return {"kind": subject.kind, "name": subject.name, "namespace": subject.namespace}
    return {"kind": subject.kind, "name": subject.name, "api_group": "rbac.authorization.k8s.io"}

