"""The URN of every resource per stack, kept as a committed snapshot, and the resource-identity checks.

    python -m tools.urns [STACK ...]            # compare with tests/snapshots/urns-<stack>.txt
    python -m tools.urns --update [STACK ...]   # rewrite the snapshots (after a deliberate change)

A changed URN is a delete and a create on the next ``pulumi up``: for a database, data loss.
The snapshot makes every such change visible in review; rename on purpose with an ``alias``.
New resources (other components landing) only add lines: regenerate and commit the snapshot.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tools.offline import ROOT, Registered, StackRun, discover_stacks, run_stack

SNAPSHOTS = ROOT / "tests" / "snapshots"
UPDATE_COMMAND = ".venv/bin/python -m tools.urns --update"

#: Kinds without a namespace; every other Kubernetes object must name its namespace (the
#: render has no provider default, and checkov's CKV_K8S_21 fails an object without one).
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "PersistentVolume", "IngressClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "ClusterIssuer", "APIService", "RuntimeClass", "CSIDriver",
})
#: Stacks whose stateful resources must be ``protect``-ed (a deliberate two-step delete).
PROTECTED_STACKS = frozenset({"production"})


def snapshot_path(stack: str) -> Path:
    return SNAPSHOTS / f"urns-{stack}.txt"


def urns(run: StackRun) -> list[str]:
    return sorted(resource.urn for resource in run.resources)


def difference(stack: str, current: Sequence[str]) -> tuple[list[str], list[str]]:
    """(added, removed) against the committed snapshot."""
    path = snapshot_path(stack)
    recorded = path.read_text().split() if path.exists() else []
    return sorted(set(current) - set(recorded)), sorted(set(recorded) - set(current))


def snapshot_message(stack: str, added: Sequence[str], removed: Sequence[str]) -> str:
    """What changed, and what to do about it."""
    lines = [f"{stack}: the resource URNs differ from tests/snapshots/urns-{stack}.txt "
             f"({len(added)} added, {len(removed)} removed)."]
    lines += [f"  + {urn}" for urn in added] + [f"  - {urn}" for urn in removed]
    if removed:
        lines.append("A removed URN is a resource `pulumi up` deletes (and, if it reappears under a new URN, "
                     "replaces): if that is a rename, add `aliases=[pulumi.Alias(name=...)]` for the old name.")
    lines.append(f"If the change is intended, run `{UPDATE_COMMAND}` and commit tests/snapshots/.")
    return "\n".join(lines)


def duplicate_urns(run: StackRun) -> list[str]:
    """URNs registered more than once (the mocks keep the last; a real engine refuses the program)."""
    return sorted(urn for urn, count in Counter(r.urn for r in run.resources).items() if count > 1)


def unnamed_objects(run: StackRun) -> list[str]:
    """Kubernetes objects without ``metadata.name``, or namespaced ones without ``metadata.namespace``."""
    problems = []
    for resource in (r for r in run.resources if r.is_kubernetes):
        metadata = resource.inputs.get("metadata") or {}
        kind = resource.inputs.get("kind")
        if not metadata.get("name"):
            problems.append(f"{resource.urn}: no metadata.name")
        if kind not in CLUSTER_SCOPED_KINDS and not metadata.get("namespace"):
            problems.append(f"{resource.urn}: {kind} without metadata.namespace")
    return problems


def is_stateful(resource: Registered) -> bool:
    """Whether deleting the resource loses data: StatefulSets (resources or components), volumes, claims."""
    kind = resource.type.rsplit(":", 1)[-1]
    spec = resource.inputs.get("spec") if resource.is_kubernetes else None
    return (kind.endswith("StatefulSet") or kind in ("PersistentVolumeClaim", "PersistentVolume")
            or bool(isinstance(spec, dict) and spec.get("volumeClaimTemplates")))


def protection_problems(run: StackRun) -> list[str]:
    """The namespace and stateful resources: ``retain_on_delete`` everywhere, ``protect`` in production."""
    production = run.stack in PROTECTED_STACKS
    guarded = [r for r in run.resources
               if is_stateful(r) or (r.is_kubernetes and r.inputs.get("kind") == "Namespace")]
    problems = [f"{r.urn}: retain_on_delete is not set" for r in guarded if not r.retain_on_delete]
    if production:
        problems += [f"{r.urn}: protect is not set in {run.stack}" for r in guarded if not r.protect]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stacks (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--update", action="store_true", help="rewrite the snapshots")
    options = parser.parse_args(argv)
    changed = False
    for stack in options.stacks or discover_stacks():
        current = urns(run_stack(stack))
        added, removed = difference(stack, current)
        if options.update:
            SNAPSHOTS.mkdir(parents=True, exist_ok=True)
            snapshot_path(stack).write_text("\n".join(current) + "\n")
            print(f"{stack}: wrote {len(current)} URNs ({len(added)} added, {len(removed)} removed)")
        elif added or removed:
            print(snapshot_message(stack, added, removed))
        else:
            print(f"{stack}: {len(current)} URNs, as in the snapshot")
        changed = changed or bool(added or removed)
    return 0 if options.update or not changed else 1


if __name__ == "__main__":
    sys.exit(main())
