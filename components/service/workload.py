"""A service's Deployments, one per track: the pod template, its container, probes and the rollout."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvFromSourceArgsDict,
    PodTemplateSpecArgsDict,
    ProbeArgsDict,
    TopologySpreadConstraintArgsDict,
)

from components.labels import TRACK, selector, track_selector
from components.names import deployment_name
from components.pod import hardened_container, hardened_pod_spec
from components.scraping import METRICS_PORT_NAME
from components.security import SECRETS_AS_ENVIRONMENT, pinned_by_tag_skips
from components.service.names import HTTP_PORT_NAME
from components.service.scope import ServiceScope
from settings.base import duration_seconds
from settings.resolve import Workload


@dataclass(frozen=True)
class PodInputs:
    """What every track's pods run as and read: the same for all Deployments of a service."""

    service_account: k8s.core.v1.ServiceAccount
    config_map: k8s.core.v1.ConfigMap
    config_data: dict[str, str]
    secret_names: list[Any]


def service_account(scope: ServiceScope) -> k8s.core.v1.ServiceAccount:
    return k8s.core.v1.ServiceAccount(
        f"{scope.name}-service-account",
        metadata=scope.meta(scope.plan.name),
        # The services do not call the Kubernetes API: no token in their pods.
        automount_service_account_token=False,
        opts=scope.opts(),
    )


def deployments(scope: ServiceScope, pods: PodInputs) -> dict[str, k8s.apps.v1.Deployment]:
    """The Deployment of each track, by track."""
    return {workload.track: _deployment(scope, workload, pods) for workload in scope.plan.workloads}


def rollout_deadline_seconds(deadline: str) -> int:
    return int(duration_seconds(deadline))


def rollout_timeouts(deadline: str) -> pulumi.CustomTimeouts:
    wait = f"{rollout_deadline_seconds(deadline) + 60}s"
    return pulumi.CustomTimeouts(create=wait, update=wait)


def _deployment(scope: ServiceScope, workload: Workload, pods: PodInputs) -> k8s.apps.v1.Deployment:
    # The stable track keeps the plain names, so a service that never used canary or
    # colours has the same URN and object name it always had.
    suffix = deployment_name("", workload.track)
    skips = pinned_by_tag_skips(workload.image)
    if pods.secret_names:
        skips.append(SECRETS_AS_ENVIRONMENT)
    return k8s.apps.v1.Deployment(
        f"{scope.name}{suffix}-deployment",
        metadata=scope.meta(f"{scope.plan.name}{suffix}", skips=skips),
        spec=_deployment_spec(scope, workload, pods),
        # The HPA owns the replica count once the Deployment exists. Pulumi waits for the
        # rollout a little past Kubernetes' own deadline, so the deadline is what fails it.
        opts=scope.opts(ignore_changes=["spec.replicas"], custom_timeouts=rollout_timeouts(scope.args.rollout_deadline),
                        depends_on=[r for binding in scope.args.bindings for r in binding.ready]),
    )


def _deployment_spec(scope: ServiceScope, workload: Workload, pods: PodInputs) -> DeploymentSpecArgsDict:
    plan = scope.plan
    return {
        "replicas": workload.fixed_replicas or plan.replicas_min,
        "selector": {"match_labels": track_selector(plan.name, workload.track)},
        "min_ready_seconds": 10,
        "progress_deadline_seconds": rollout_deadline_seconds(scope.args.rollout_deadline),
        "revision_history_limit": 5,
        "strategy": {
            "type": "RollingUpdate",
            # Zero downtime: a new pod must be ready before an old one goes.
            "rolling_update": {"max_unavailable": 0, "max_surge": plan.policy.max_surge},
        },
        "template": _pod_template(scope, workload, pods),
    }


def _pod_template(scope: ServiceScope, workload: Workload, pods: PodInputs) -> PodTemplateSpecArgsDict:
    plan = scope.plan
    # A changed ConfigMap must roll the pods: the checksum makes it a pod template change.
    config_checksum = hashlib.sha256(json.dumps(pods.config_data, sort_keys=True).encode()).hexdigest()
    return {
        "metadata": {
            "labels": {**scope.labels, TRACK: workload.track},
            "annotations": {"checksum/config": config_checksum},
        },
        "spec": {
            **hardened_pod_spec(pods.service_account.metadata.name, [_container(scope, workload, pods)],
                                tmp_size="256Mi"),
            "priority_class_name": scope.args.priority_class_name,
            "termination_grace_period_seconds": plan.policy.termination_grace_seconds,
            "topology_spread_constraints": [
                _spread(plan.name, "topology.kubernetes.io/zone"),
                _spread(plan.name, "kubernetes.io/hostname"),
            ],
        },
    }


def _spread(service: str, topology_key: str) -> TopologySpreadConstraintArgsDict:
    return {
        "max_skew": 1,
        "topology_key": topology_key,
        # Prefer spreading, but never leave a pod pending for it (a small cluster has one zone).
        "when_unsatisfiable": "ScheduleAnyway",
        "label_selector": {"match_labels": selector(service)},
        "match_label_keys": ["pod-template-hash"],
    }


def _container(scope: ServiceScope, workload: Workload, pods: PodInputs) -> ContainerArgsDict:
    plan = scope.plan
    spec = plan.spec
    return {
        **hardened_container(plan.name, workload.image, plan),
        "ports": [
            {"name": HTTP_PORT_NAME, "container_port": spec.port, "protocol": "TCP"},
            {"name": METRICS_PORT_NAME, "container_port": spec.metrics_port, "protocol": "TCP"},
        ],
        "env_from": [
            {"config_map_ref": {"name": pods.config_map.metadata.name}},
            *[EnvFromSourceArgsDict(secret_ref={"name": secret}) for secret in pods.secret_names],
        ],
        # Startup allows a slow first start (5 minutes) without a lenient liveness probe.
        "startup_probe": _probe(spec.health_path, period=5, failures=60),
        "liveness_probe": _probe(spec.health_path, period=10, failures=3),
        "readiness_probe": _probe(spec.ready_path, period=5, failures=3),
        # Keep serving while endpoints and load balancers stop routing to this pod.
        "lifecycle": {"pre_stop": {"sleep": {"seconds": 5}}},
    }


def _probe(path: str, period: int, failures: int) -> ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": HTTP_PORT_NAME},
        "period_seconds": period,
        "timeout_seconds": 3,
        "failure_threshold": failures,
    }
