"""Every stack through the real Pulumi engine onto the local cluster, and what it leaves there.

Per stack, in order: the preview with the policy pack, ``up`` from empty, the state the API
server and its controllers then report, a no-op ``up``, and at the end the destroy. The
expected counts come from the same program run under mocks (``stack_run``): what the engine
created must be exactly what the program registers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from tests.cluster.conftest import Outcome, deploy, objects
from tests.conftest import stack_run
from tools.cluster.local_cluster import LocalCluster
from tools.offline import stack_settings

pytestmark = pytest.mark.realtool

#: Kinds whose objects are custom resources, served by the vendored CRDs.
CUSTOM_KINDS = ("ServiceMonitor", "PrometheusRule", "AlertmanagerConfig")
#: Event reasons that mean the API server or a controller refused what the stack asked for.
REFUSALS = ("FailedCreate", "FailedAttachVolume", "ProvisioningFailed")


@dataclass
class Deployed:
    stack: str
    namespace: str
    preview: Outcome
    up: Outcome


@pytest.fixture(scope="module", params=["staging", "production"])
def deployed(request: pytest.FixtureRequest, cluster: LocalCluster) -> Iterator[Deployed]:
    stack = request.param
    namespace = stack_settings(stack).settings.environment.namespace
    preview = deploy("preview", stack)
    up = deploy("up", stack)
    yield Deployed(stack, namespace, preview, up)
    teardown(stack)


def teardown(stack: str) -> None:
    """Leave the cluster as found: protection lifted as docs/local-cluster.md says, then destroy."""
    deploy("unprotect", stack)
    deploy("destroy", stack)


def test_preview_passes_the_policy_pack(deployed: Deployed):
    assert deployed.preview.returncode == 0, deployed.preview.output[-3000:]
    assert "✅ codai-platform" in deployed.preview.output  # the pack ran, and found nothing
    assert deployed.preview.changes == {"create": len(stack_run(deployed.stack).resources) + 1}


def test_up_from_empty_creates_what_the_program_registers(deployed: Deployed):
    assert deployed.up.returncode == 0, deployed.up.output[-3000:]
    # Every resource the program registers, plus the stack itself.
    assert deployed.up.changes == {"create": len(stack_run(deployed.stack).resources) + 1}


def test_every_workload_is_available_and_the_bootstrap_job_complete(deployed: Deployed, cluster: LocalCluster):
    workloads = objects(cluster, "deployments,statefulsets", deployed.namespace)
    rendered = [o for o in stack_run(deployed.stack).kubernetes_objects() if o["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == len(rendered)
    unavailable = [f"{w['kind']}/{w['metadata']['name']}" for w in workloads
                   if w["status"].get("readyReplicas", 0) < w["spec"]["replicas"]
                   or w["status"].get("updatedReplicas", 0) < w["spec"]["replicas"]]
    assert unavailable == []
    jobs = objects(cluster, "jobs", deployed.namespace)
    assert jobs, "the bootstrap Job ran"
    assert all(any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions", []))
               for job in jobs)


def test_pods_pass_pod_security_restricted_and_nothing_was_refused(deployed: Deployed, cluster: LocalCluster):
    namespace = objects(cluster, "namespaces", "")
    labels = next(n for n in namespace if n["metadata"]["name"] == deployed.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    events = objects(cluster, "events", deployed.namespace)
    refused = [f"{e['reason']}: {e['message']}" for e in events
               if e["reason"] in REFUSALS or "forbidden" in e.get("message", "")]
    assert refused == []
    pods = objects(cluster, "pods", deployed.namespace)
    assert pods and all(p["status"]["phase"] in ("Running", "Succeeded") for p in pods)


def test_quota_usage_stays_within_the_hard_limits(deployed: Deployed, cluster: LocalCluster):
    [quota] = objects(cluster, "resourcequotas", deployed.namespace)
    hard, used = quota["status"]["hard"], quota["status"]["used"]
    assert set(used) == set(hard)
    over = {key: (used[key], hard[key]) for key in hard if quantity(used[key]) > quantity(hard[key])}
    assert over == {}
    assert quantity(used["pods"]) > 0  # the controller counted the pods


def test_custom_resources_are_accepted_by_their_crds(deployed: Deployed, cluster: LocalCluster):
    for kind in CUSTOM_KINDS:
        rendered = sorted(o["metadata"]["name"] for o in stack_run(deployed.stack).kubernetes_objects()
                          if o["kind"] == kind)
        live = sorted(o["metadata"]["name"] for o in objects(cluster, kind.lower() + "s", deployed.namespace))
        assert live == rendered, kind


def test_a_second_up_changes_nothing(deployed: Deployed):
    again = deploy("up", deployed.stack, None, "--expect-no-changes")
    assert again.returncode == 0, again.output[-3000:]
    assert again.changes == {}


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity (``1500m``, ``2Gi``, ``10``) as a number."""
    suffixes = {"m": Decimal("0.001"), "k": Decimal(1000), "M": Decimal(1000) ** 2, "G": Decimal(1000) ** 3,
                "Ki": Decimal(1024), "Mi": Decimal(1024) ** 2, "Gi": Decimal(1024) ** 3, "Ti": Decimal(1024) ** 4}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * suffixes[suffix]
    return Decimal(text)
