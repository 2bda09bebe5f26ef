"""``make bench-cluster``: what real deploys cost on the local cluster, beside the API server's floor.

For each stack, on a cluster started afresh:

- the floor: the same objects, rendered under mocks, applied with ``kubectl apply
  --server-side`` and waited for (Deployments available, StatefulSets ready, the Job
  complete): what the API server and its controllers need for them, with no engine;
- then through Pulumi: ``preview``, ``up`` from empty, a no-op ``up`` and ``destroy``.

Plus the cluster's own warm start. Prints a Markdown table (docs/performance.md keeps the
figures of a run); the cold build of the tools is timed by ``build.sh`` itself.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from tools.cluster.deploy import operate
from tools.cluster.local_cluster import LocalCluster, say
from tools.cluster.toolchain import ROOT
from tools.offline import discover_stacks, run_stack, stack_plan

#: Objects a namespaced object needs first.
FIRST = ("Namespace", "PriorityClass")


class Timeline:
    """When each resource's step started and ended during an update (the engine's events, 1 s grain)."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}
        self.ended: dict[str, int] = {}

    def see(self, event: auto.EngineEvent) -> None:
        if event.resource_pre_event:
            self.started[event.resource_pre_event.metadata.urn] = event.timestamp
        elif event.res_outputs_event:
            self.ended[event.res_outputs_event.metadata.urn] = event.timestamp

    def slowest(self, count: int) -> list[str]:
        if not self.started:
            return []
        zero = min(self.started.values())
        # Objects only: a component's step lasts as long as its slowest child.
        steps = sorted(((self.ended[urn] - start, start - zero, kind_of(urn), urn.rsplit("::", 1)[-1])
                        for urn, start in self.started.items()
                        if urn in self.ended and kind_of(urn).startswith(("kubernetes:", "random:"))), reverse=True)
        return [f"{took:4d} s  ({begun:3d} -> {begun + took:3d})  {kind} {name}" for took, begun, kind, name in
                steps[:count]]


def kind_of(urn: str) -> str:
    """The resource's own type: the last of the parent type chain in its URN."""
    return urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1]


def timed(action: Callable[[], Any]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def kubectl_floor(cluster: LocalCluster, stack: str) -> tuple[float, float]:
    """Seconds to apply the stack's rendered objects server-side, and then to have them ready."""
    objects = run_stack(stack).kubernetes_objects()
    ordered = sorted(objects, key=lambda o: o["kind"] not in FIRST)
    namespace = stack_plan(stack).settings.environment.namespace
    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / f"{stack}.yaml"
        manifest.write_text(yaml.safe_dump_all(ordered, sort_keys=False))
        apply = timed(lambda: cluster.kubectl("apply", "--server-side", "-f", str(manifest)))

    def ready() -> None:
        for kind, condition in (("deployments", "condition=Available"), ("jobs", "condition=Complete"),
                                ("statefulsets", "jsonpath={.status.readyReplicas}=1")):
            cluster.kubectl("wait", "-n", namespace, kind, "--all", f"--for={condition}", "--timeout=600s")
        # Available is the Deployment's minimum; the rollout is done when every replica is updated.
        for name in cluster.kubectl("get", "deployments", "-n", namespace, "-o", "name").split():
            cluster.kubectl("rollout", "status", "-n", namespace, name, "--timeout=600s")

    return apply, timed(ready)


def bench_stack(stack: str) -> dict[str, float]:
    cluster = LocalCluster()
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    figures: dict[str, float] = {}
    cluster.stop(quiet=True)
    figures["cluster start"] = timed(cluster.start)
    figures["kubectl apply"], figures["kubectl ready"] = kubectl_floor(cluster, stack)
    cluster.stop(quiet=True)
    cluster.start()
    timeline = Timeline()
    for name, action, options in (("preview", "preview", {}), ("up from empty", "up", {"on_event": timeline.see}),
                                  ("no-op up", "up", {"expect_no_changes": True})):
        figures[name] = operate(action, stack, stack_file, quiet=True, **options)["seconds"]
        say(f"{stack}: {name} {figures[name]:.1f} s")
    say(f"{stack}: the slowest steps of `up` from empty (start and end, seconds into the update):")
    for line in timeline.slowest(12):
        say(f"  {line}")
    operate("unprotect", stack, stack_file, quiet=True)
    figures["destroy"] = operate("destroy", stack, stack_file, policy=False, quiet=True)["seconds"]
    cluster.stop(quiet=True)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    stacks = list(argv if argv is not None else sys.argv[1:]) or discover_stacks()
    results = {stack: bench_stack(stack) for stack in stacks}
    columns = ["cluster start", "preview", "up from empty", "no-op up", "destroy", "kubectl apply", "kubectl ready"]
    print("| stack | " + " | ".join(columns) + " | up ÷ floor |")
    print("|---" * (len(columns) + 2) + "|")
    for stack, figures in results.items():
        floor = figures["kubectl apply"] + figures["kubectl ready"]
        cells = [f"{figures[column]:.1f} s" for column in columns]
        print(f"| {stack} | " + " | ".join(cells) + f" | {figures['up from empty'] / floor:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
