"""The pieces of a data component's jobs (the bootstrap Job, PostgreSQL's backup CronJob): the
scripts ConfigMap, the administrator's credentials as files, the pod template, the bootstrap
Job named after what it applies, and the jobs' NetworkPolicy.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.batch.v1 import JobSpecArgsDict
from pulumi_kubernetes.core.v1 import PodTemplateSpecArgsDict, VolumeArgsDict, VolumeMountArgsDict
from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict

from components.data import job_scripts
from components.data.pod_parts import Pod, digest, secret_volume
from components.data.provider import AnyDataComponent
from components.pod import hardened_pod_spec
from components.security import pinned_by_tag_skips
from settings.data import SecretReference

#: Where jobs (and the PostgreSQL server, on its first start) find the administrator's credentials:
#: files, never environment variables.
ADMIN_DIR = "/run/codai/admin"
#: How long a job may take before Kubernetes stops it.
BOOTSTRAP_DEADLINE_SECONDS = 900


def scripts_config_map(component: AnyDataComponent, *names: str) -> k8s.core.v1.ConfigMap:
    """The jobs' scripts (components/data/scripts), mounted at ``/scripts`` by each job."""
    return k8s.core.v1.ConfigMap(
        f"{component.name}-scripts",
        metadata=component.meta(f"{component.name}-scripts", "scripts"),
        data=job_scripts.scripts(*names),
        opts=component.child_opts(),
    )


def admin_files(admin: SecretReference) -> tuple[VolumeArgsDict, VolumeMountArgsDict]:
    """The administrator's Secret as ``/run/codai/admin/username`` and ``.../password``."""
    volume = secret_volume("admin", admin.name, {admin.username_key: "username", admin.password_key: "password"})
    return volume, {"name": "admin", "mount_path": ADMIN_DIR, "read_only": True}


def job_pod(component: AnyDataComponent, job: str, pod: Pod) -> PodTemplateSpecArgsDict:
    """Pod template of a job: same restrictions as the server, never restarted in place."""
    spec = hardened_pod_spec(component.ensure_service_account(), pod.containers, tmp_size="64Mi",
                             volumes=pod.volumes)
    spec["restart_policy"] = "Never"
    if pod.init_containers:
        spec["init_containers"] = pod.init_containers
    return {"metadata": {"labels": component.labels(job)}, "spec": spec}


def bootstrap_job(component: AnyDataComponent, pod: Pod, content: Sequence[pulumi.Input[str]], *,
                  depends_on: Sequence[pulumi.Resource], images: Sequence[str]) -> k8s.batch.v1.Job:
    """The job that creates or updates users (and databases), named after what it applies.

    A Job's pod template cannot change; a new name for new content makes Pulumi replace
    it, which runs the bootstrap again. Unchanged content keeps the finished Job as is.
    """
    job_name = digest(*content).apply(lambda value: f"{component.name}-bootstrap-{value}")
    skips = pinned_by_tag_skips(*images)
    spec: JobSpecArgsDict = {
        "backoff_limit": 6,
        "active_deadline_seconds": BOOTSTRAP_DEADLINE_SECONDS,
        "template": job_pod(component, "bootstrap", pod),
    }
    return k8s.batch.v1.Job(
        f"{component.name}-bootstrap-job",
        metadata=component.meta(job_name, "bootstrap", skips=skips),
        spec=spec,
        opts=component.child_opts(depends_on=list(depends_on)),
    )


def network_policy(component: AnyDataComponent, job: str,
                   extra_egress: Sequence[NetworkPolicyEgressRuleArgsDict] = ()) -> None:
    """A job's pods reach the server (like a client), plus ``extra_egress``; nothing reaches them."""
    k8s.networking.v1.NetworkPolicy(
        f"{component.name}-{job}-network-policy",
        metadata=component.meta(f"{component.name}-{job}", "network-policy"),
        spec={
            "pod_selector": {"match_labels": component.pod_selector(job)},
            "policy_types": ["Ingress", "Egress"],
            "egress": [*component.client_egress(), *extra_egress],
        },
        opts=component.child_opts(),
    )
