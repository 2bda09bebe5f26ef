"""How many pods a service runs and how many may go at once: its HorizontalPodAutoscaler and PDB."""

from __future__ import annotations

import pulumi_kubernetes as k8s
from pulumi_kubernetes.autoscaling.v2 import MetricSpecArgsDict

from components.labels import selector
from components.service.scope import ServiceScope


def autoscaler(scope: ServiceScope, deployment: k8s.apps.v1.Deployment) -> None:
    plan = scope.plan
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{scope.name}-hpa",
        metadata=scope.meta(plan.name),
        spec={
            "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
            "min_replicas": plan.replicas_min,
            "max_replicas": plan.replicas_max,
            "metrics": [
                utilization("cpu", plan.target_cpu_utilization),
                utilization("memory", plan.target_memory_utilization),
            ],
            # Scale up fast, down slowly: a brief dip must not drop capacity before the next peak.
            "behavior": {
                "scale_down": {"stabilization_window_seconds": 300,
                               "policies": [{"type": "Percent", "value": 50, "period_seconds": 60}]},
                "scale_up": {"stabilization_window_seconds": 0,
                             "policies": [{"type": "Percent", "value": 100, "period_seconds": 30}]},
            },
        },
        opts=scope.opts(),
    )


def utilization(resource: str, target: int) -> MetricSpecArgsDict:
    """An HPA metric: keep the pods' average use of ``resource`` at ``target`` % of their requests."""
    return {"type": "Resource", "resource": {"name": resource, "target": {
        "type": "Utilization", "average_utilization": target}}}


def disruption_budget(scope: ServiceScope) -> None:
    plan = scope.plan
    k8s.policy.v1.PodDisruptionBudget(
        f"{scope.name}-pdb",
        metadata=scope.meta(plan.name),
        spec={
            # maxUnavailable (never minAvailable = replicas) keeps node drains possible.
            "max_unavailable": plan.policy.pdb_max_unavailable,
            "selector": {"match_labels": selector(plan.name)},
            # A crash-looping pod must not block a drain.
            "unhealthy_pod_eviction_policy": "AlwaysAllow",
        },
        opts=scope.opts(),
    )
