"""Every stack through the real Pulumi engine onto the local cluster, and what it leaves there.

Per stack file (every ``Pulumi.<stack>.yaml``), in order: the preview with the policy pack,
``up`` from empty, the state the API server and its controllers then report, a no-op ``up``,
releases and rollouts, and at the end the destroy. The expected counts come from the same
program run under mocks (``stack_run``): what the engine created must be exactly what the
program registers.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Outcome, deploy, live, objects, stack_file_with
from tests.conftest import STACKS, stack_run
from tools.cluster.kwok import BROKEN_IMAGE_TAG_SUFFIX
from tools.cluster.local_cluster import LocalCluster
from tools.cluster.report import KINDS
from tools.cluster.toolchain import ROOT
from tools.offline import stack_plan

pytestmark = pytest.mark.realtool

#: Kinds whose objects are custom resources, served by the vendored CRDs.
CUSTOM_KINDS = ("ServiceMonitor", "PrometheusRule", "AlertmanagerConfig", "Cluster", "Pooler", "Database",
                "ScheduledBackup")
#: CloudNativePG's kinds, named with their group: ``clusters`` alone is ambiguous to kubectl.
CNPG_KINDS = ("Cluster", "Pooler", "Database", "ScheduledBackup")
#: Event reasons that mean the API server or a controller refused what the stack asked for.
REFUSALS = ("FailedCreate", "FailedAttachVolume", "ProvisioningFailed")
#: A write that lost an optimistic-concurrency race is retried by its controller: not a refusal.
RETRIED = "the object has been modified"


@dataclass
class Deployed:
    stack: str
    namespace: str
    preview: Outcome
    up: Outcome
    #: Where the tests write their variants of the stack file.
    files: Path
    #: The stack file of the last release that deployed cleanly: what a rollback re-applies.
    last_good: Path | None = None

    def file_with(self, name: str, changes: dict[str, Any]) -> Path:
        return stack_file_with(self.stack, self.files, name, changes)


@pytest.fixture(scope="module", params=STACKS)
def deployed(request: pytest.FixtureRequest, cluster: LocalCluster,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    stack = request.param
    namespace = stack_plan(stack).settings.environment.namespace
    preview = deploy("preview", stack)
    up = deploy("up", stack)
    yield Deployed(stack, namespace, preview, up, tmp_path_factory.mktemp(stack))
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


def test_every_workload_is_available_and_every_job_complete(deployed: Deployed, cluster: LocalCluster):
    workloads = objects(cluster, "deployments,statefulsets", deployed.namespace)
    rendered = [o for o in stack_run(deployed.stack).kubernetes_objects() if o["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == len(rendered)
    unavailable = [f"{w['kind']}/{w['metadata']['name']}" for w in workloads
                   if w["status"].get("readyReplicas", 0) < w["spec"]["replicas"]
                   or w["status"].get("updatedReplicas", 0) < w["spec"]["replicas"]]
    assert unavailable == []
    # A managed PostgreSQL's bootstrap Job, where the stack has one; CloudNativePG runs its own elsewhere.
    jobs = objects(cluster, "jobs", deployed.namespace)
    rendered_jobs = [o["metadata"]["name"] for o in stack_run(deployed.stack).kubernetes_objects()
                     if o["kind"] == "Job"]
    assert sorted(job["metadata"]["name"] for job in jobs) == sorted(rendered_jobs)
    assert all(any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions", []))
               for job in jobs)


def test_pods_pass_pod_security_restricted_and_nothing_was_refused(deployed: Deployed, cluster: LocalCluster):
    namespace = objects(cluster, "namespaces", "")
    labels = next(n for n in namespace if n["metadata"]["name"] == deployed.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    events = objects(cluster, "events", deployed.namespace)
    refused = [f"{e['reason']}: {e['message']}" for e in events if RETRIED not in e.get("message", "")
               and (e["reason"] in REFUSALS or "forbidden" in e.get("message", ""))]
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
        plural = kind.lower() + "s" + (".postgresql.cnpg.io" if kind in CNPG_KINDS else "")
        live = sorted(o["metadata"]["name"] for o in objects(cluster, plural, deployed.namespace))
        assert live == rendered, kind


def test_a_second_up_changes_nothing(deployed: Deployed):
    again = deploy("up", deployed.stack, None, "--expect-no-changes")
    assert again.returncode == 0, again.output[-3000:]
    assert again.changes == {}


# --- releases and rollouts (docs/rollouts.md) ---------------------------------------------------

NEXT_RELEASE = "2024.12.2"


def rolled_out(cluster: LocalCluster, namespace: str, timeout: float = 90) -> list[str]:
    """Wait until every Deployment's rollout is complete as ``kubectl rollout status`` means it.

    ``pulumi up`` returns once the new ReplicaSet is available; the controller scales the old
    one down a moment later. Returns the Deployments still rolling when the time is up.
    """
    deadline = time.monotonic() + timeout
    while True:
        rolling = [d["metadata"]["name"] for d in objects(cluster, "deployments", namespace)
                   if not rollout_complete(d)]
        if not rolling or time.monotonic() > deadline:
            return rolling
        time.sleep(1)


def rollout_complete(deployment: dict[str, Any]) -> bool:
    status, wanted = deployment.get("status", {}), deployment["spec"].get("replicas", 1)
    return (status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == wanted
            and status.get("replicas", 0) == wanted
            and status.get("availableReplicas", 0) == wanted)


def images(cluster: LocalCluster, namespace: str) -> dict[str, set[str]]:
    """Deployment -> the images its ready pods run, once every rollout is complete."""
    assert rolled_out(cluster, namespace) == []
    by_deployment: dict[str, set[str]] = {}
    for pod in live_pods(cluster, namespace):
        owner = pod["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
        if owner and ready and pod["status"]["phase"] == "Running":
            by_deployment.setdefault(owner, set()).update(c["image"] for c in pod["spec"]["containers"])
    return by_deployment


def live_pods(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    """The pods not on their way out."""
    return [pod for pod in objects(cluster, "pods", namespace) if "deletionTimestamp" not in pod["metadata"]]


def generations(cluster: LocalCluster, namespace: str, kinds: str = "deployments,statefulsets") -> dict[str, int]:
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["generation"]
            for o in objects(cluster, kinds, namespace)}


def test_a_release_bump_rolls_every_service_and_replaces_nothing(deployed: Deployed, cluster: LocalCluster):
    before = generations(cluster, deployed.namespace, "statefulsets")
    bump = deployed.file_with("release-bump", {"environment": {"release": NEXT_RELEASE}})
    outcome = deploy("up", deployed.stack, bump)
    assert outcome.returncode == 0, outcome.output[-3000:]
    assert set(outcome.changes) == {"update"}, outcome.changes  # no create, delete or replace
    services = {s.name for s in stack_plan(deployed.stack).services}
    running = images(cluster, deployed.namespace)
    stale = {name: running.get(name) for name in services
             if not running.get(name) or not all(image.endswith(f":{NEXT_RELEASE}") for image in running[name])}
    assert stale == {}
    # The data tier does not follow the application release: untouched.
    assert generations(cluster, deployed.namespace, "statefulsets") == before
    deployed.last_good = bump


def test_a_canary_and_a_blue_green_pair_take_effect_as_documented(deployed: Deployed, cluster: LocalCluster):
    rollouts = {"environment": {"release": NEXT_RELEASE}, "services": {
        "bancai": {"rollout": {"strategy": "canary", "canary": {"image": {"tag": "2024.12.3"}, "weight": 10}}},
        "wallet": {"rollout": {"strategy": "blueGreen", "blueGreen": {
            "active": "blue", "blue": {"tag": NEXT_RELEASE}, "green": {"tag": "2024.12.3"}}}}}}
    stable = live(cluster, "deployment", "bancai", deployed.namespace)["metadata"]["generation"]
    outcome = deploy("up", deployed.stack, deployed.file_with("rollouts", rollouts))
    assert outcome.returncode == 0, outcome.output[-3000:]
    canary = live(cluster, "deployment", "bancai-canary", deployed.namespace)
    assert canary["status"].get("readyReplicas") == 1
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2024.12.3")
    annotations = live(cluster, "ingress", "bancai-canary", deployed.namespace)["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "10"
    # The stable track is not touched by adding a canary.
    assert live(cluster, "deployment", "bancai", deployed.namespace)["metadata"]["generation"] == stable
    for colour in ("blue", "green"):
        pair = live(cluster, "deployment", f"wallet-{colour}", deployed.namespace)
        assert pair["status"].get("readyReplicas", 0) >= 1, colour
    assert live(cluster, "service", "wallet", deployed.namespace)["spec"]["selector"]["codai.io/track"] == "blue"
    preview = live(cluster, "service", "wallet-preview", deployed.namespace)
    assert preview["spec"]["selector"]["codai.io/track"] == "green"

    # The switch: only the Services' selectors and the HPA's target change; no pod restarts.
    rollouts["services"]["wallet"]["rollout"]["blueGreen"]["active"] = "green"  # type: ignore[index]
    before = generations(cluster, deployed.namespace)
    switch = deployed.file_with("switch", rollouts)
    outcome = deploy("up", deployed.stack, switch)
    assert outcome.returncode == 0, outcome.output[-3000:]
    assert outcome.changes == {"update": 3}
    assert generations(cluster, deployed.namespace) == before
    assert live(cluster, "service", "wallet", deployed.namespace)["spec"]["selector"]["codai.io/track"] == "green"
    hpa = live(cluster, "horizontalpodautoscaler", "wallet", deployed.namespace)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "wallet-green"
    deployed.last_good = switch


def test_a_broken_release_fails_at_its_deadline_while_the_old_pods_keep_serving(
        deployed: Deployed, cluster: LocalCluster):
    assert deployed.last_good is not None
    good = yaml_config(deployed.last_good)
    deadline = 30
    broken = deployed.file_with("broken", {
        "environment": {"release": f"2024.12.9{BROKEN_IMAGE_TAG_SUFFIX}", "rolloutDeadline": f"{deadline}s"},
        "services": good.get("codai-platform:services", {})})
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "tools.cluster.deploy", "up", deployed.stack, "--json",
                                "--stack-file", str(broken)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # While it fails, every disruption budget holds: the old pods keep serving.
    breaches: set[str] = set()
    while process.poll() is None:
        for budget in objects(cluster, "poddisruptionbudgets", deployed.namespace):
            status = budget.get("status", {})
            if status.get("currentHealthy", 0) < status.get("desiredHealthy", 0):
                breaches.add(budget["metadata"]["name"])
        time.sleep(2)
    elapsed = time.monotonic() - started
    output = process.communicate()[1]
    assert process.returncode == 1, output[-3000:]
    assert "ProgressDeadlineExceeded" in output or "progress deadline" in output.lower(), output[-3000:]
    # Kubernetes' deadline failed it, not Pulumi's 10-minute default (measured: 100 s for the
    # whole `up`, program run and the other services' updates included).
    assert elapsed < 300, elapsed
    assert breaches == set()
    unavailable = [d["metadata"]["name"] for d in objects(cluster, "deployments", deployed.namespace)
                   if d["status"].get("availableReplicas", 0) < d["spec"]["replicas"]]
    assert unavailable == []


def test_the_documented_rollback_restores_the_last_good_release(deployed: Deployed, cluster: LocalCluster):
    assert deployed.last_good is not None
    outcome = deploy("up", deployed.stack, deployed.last_good)
    assert outcome.returncode == 0, outcome.output[-3000:]
    assert rolled_out(cluster, deployed.namespace) == []
    broken = [pod["metadata"]["name"] for pod in live_pods(cluster, deployed.namespace)
              if any(c["image"].endswith(BROKEN_IMAGE_TAG_SUFFIX) for c in pod["spec"]["containers"])]
    assert broken == []
    again = deploy("up", deployed.stack, deployed.last_good, "--expect-no-changes")
    assert again.returncode == 0 and again.changes == {}, again.output[-3000:]


# --- destroy -------------------------------------------------------------------------------------

#: What stays in the namespace after a destroy, by design: the data (docs/data.md): the
#: CloudNativePG Cluster, whose operator keeps its volumes, and what Kubernetes itself puts in
#: every namespace.
RETAINED = {("Cluster", "postgres-cluster"), ("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


def retained(stack: str) -> set[tuple[str, str]]:
    """``RETAINED`` and the volume of every Redis server (three where Redis is replicated)."""
    plan = stack_plan(stack)
    redis = plan.settings.redis.sizing(plan.settings.environment.sizing).instances
    return RETAINED | {("PersistentVolumeClaim", f"data-redis-{index}") for index in range(redis)}
NAMESPACED_KINDS = ",".join((*KINDS, "replicasets"))


def test_destroy_leaves_only_the_data_and_refuses_while_protected(deployed: Deployed, cluster: LocalCluster):
    assert deployed.last_good is not None
    if stack_plan(deployed.stack).settings.environment.protect_stateful:
        refused = deploy("destroy", deployed.stack, deployed.last_good)
        assert refused.returncode == 1
        assert "protected" in refused.output, refused.output[-3000:]
        for kind, name in (("clusters.postgresql.cnpg.io", "postgres-cluster"), ("statefulset", "redis")):
            assert live(cluster, kind, name, deployed.namespace)["metadata"]["name"] == name
        # As docs/data.md says: protection is lifted on purpose, then the stack can go.
        assert deploy("unprotect", deployed.stack, deployed.last_good).returncode == 0
    outcome = deploy("destroy", deployed.stack, deployed.last_good)
    assert outcome.returncode == 0, outcome.output[-3000:]
    remaining = {(o["kind"], o["metadata"]["name"]) for o in objects(cluster, NAMESPACED_KINDS, deployed.namespace)
                 if o["kind"] != "Pod" or o["status"].get("phase") != "Succeeded"}
    assert remaining == retained(deployed.stack)
    priority_classes = [o["metadata"]["name"] for o in objects(cluster, "priorityclasses", "")
                        if o["metadata"]["name"].startswith(f"{deployed.namespace}-")]
    assert priority_classes == []


def yaml_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())["config"]
    return config


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity (``1500m``, ``2Gi``, ``10``) as a number."""
    suffixes = {"m": Decimal("0.001"), "k": Decimal(1000), "M": Decimal(1000) ** 2, "G": Decimal(1000) ** 3,
                "Ki": Decimal(1024), "Mi": Decimal(1024) ** 2, "Gi": Decimal(1024) ** 3, "Ti": Decimal(1024) ** 4}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * suffixes[suffix]
    return Decimal(text)
