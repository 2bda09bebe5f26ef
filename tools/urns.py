"""The URN of every resource per stack, kept as a committed snapshot, and the resource-identity checks.

    python -m tools.urns [STACK ...]            # compare with tests/snapshots/urns-<stack>.txt
    python -m tools.urns --update [STACK ...]   # rewrite the snapshots (after a deliberate change)

A changed URN is a delete and a create on the next ``pulumi up``: for a database, data loss.
So is, under an unchanged URN, a change to what Kubernetes cannot update in place: the
object's name or namespace, a workload's selector, a StatefulSet's service name or volume
claims. Each snapshot line is a URN, followed for Kubernetes objects by those fields
(``URN | name=... selector=...``), so every such change is visible in review; rename on purpose
with an ``alias``. New resources (other components landing) only add lines: regenerate and
commit the snapshot.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.offline import ROOT, Registered, StackRun, discover_stacks, run_stack, stack_plan

SNAPSHOTS = ROOT / "tests" / "snapshots"
UPDATE_COMMAND = ".venv/bin/python -m tools.urns --update"

#: Kinds without a namespace; every other Kubernetes object must name its namespace (the
#: render has no provider default, and checkov's CKV_K8S_21 fails an object without one).
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "PersistentVolume", "IngressClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "ClusterIssuer", "APIService", "RuntimeClass", "CSIDriver",
})


def snapshot_path(stack: str) -> Path:
    return SNAPSHOTS / f"urns-{stack}.txt"


SEPARATOR = " | "
#: Kinds whose ``spec.selector`` the API server refuses to change: a change replaces the object.
IMMUTABLE_SELECTOR_KINDS = frozenset({"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"})


def urns(run: StackRun) -> list[str]:
    return sorted(resource.urn for resource in run.resources)


def _selector(selector: Any) -> str:
    selector = selector or {}
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    terms += [f"{e['key']} {e['operator']} {sorted(e.get('values') or [])}"
              for e in selector.get("matchExpressions") or []]
    return ",".join(terms)


def identity(resource: Registered) -> str:
    """What a Kubernetes object cannot change without being replaced, as one line (empty otherwise)."""
    if not resource.is_kubernetes:
        return ""
    inputs = resource.inputs
    metadata, spec, kind = inputs.get("metadata") or {}, inputs.get("spec") or {}, inputs.get("kind")
    fields = [f"name={metadata.get('namespace', '')}/{metadata.get('name', '')}"]
    if kind in IMMUTABLE_SELECTOR_KINDS:
        fields.append(f"selector={_selector(spec.get('selector'))}")
    if kind == "StatefulSet":
        claims = [f"{c['metadata']['name']}:{sorted(c['spec'].get('accessModes') or [])}:"
                  f"{c['spec'].get('storageClassName', '')}" for c in spec.get("volumeClaimTemplates") or []]
        fields += [f"serviceName={spec.get('serviceName', '')}", f"claims={','.join(claims)}"]
    return " ".join(fields)


def snapshot_lines(run: StackRun) -> list[str]:
    """One line per resource: its URN, and for Kubernetes objects :func:`identity`."""
    return sorted(SEPARATOR.join(filter(None, (r.urn, identity(r)))) for r in run.resources)


@dataclass
class Difference:
    """How a run differs from the committed snapshot."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: (URN, recorded identity, current identity): same URN, replaced all the same.
    replaced: list[tuple[str, str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.replaced)


def _by_urn(lines: Sequence[str]) -> dict[str, str]:
    """URN -> identity of snapshot lines (blank lines ignored)."""
    pairs = (line.partition(SEPARATOR) for line in lines if line.strip())
    return {urn: rest for urn, _, rest in pairs}


def compare(stack: str, current: Sequence[str]) -> Difference:
    """``current`` snapshot lines against the committed snapshot of ``stack``."""
    path = snapshot_path(stack)
    recorded = _by_urn(path.read_text().splitlines() if path.exists() else [])
    now = _by_urn(current)
    return Difference(
        added=sorted(set(now) - set(recorded)),
        removed=sorted(set(recorded) - set(now)),
        replaced=sorted((urn, recorded[urn], now[urn]) for urn in set(now) & set(recorded)
                        if now[urn] != recorded[urn]),
    )


def snapshot_message(stack: str, found: Difference) -> str:
    """What changed, and what to do about it."""
    lines = [f"{stack}: the resources differ from tests/snapshots/urns-{stack}.txt ({len(found.added)} added, "
             f"{len(found.removed)} removed, {len(found.replaced)} replaced under the same URN)."]
    lines += [f"  + {urn}" for urn in found.added] + [f"  - {urn}" for urn in found.removed]
    for urn, before, after in found.replaced:
        lines += [f"  ~ {urn}", f"      was: {before}", f"      now: {after}"]
    if found.removed:
        lines.append("A removed URN is a resource `pulumi up` deletes (and, if it reappears under a new URN, "
                     "replaces): if that is a rename, add `aliases=[pulumi.Alias(name=...)]` for the old name.")
    if found.replaced:
        lines.append("A replaced object is deleted and created again (its pods restarted, a StatefulSet's claims "
                     "orphaned): keep its name, namespace and selector unless that is the point of the change.")
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
    """Whether the resource holds or serves data: StatefulSets (resources or components), volumes, claims."""
    kind = resource.type.rsplit(":", 1)[-1]
    volume_kinds = ("PersistentVolumeClaim", "PersistentVolume")
    return kind.endswith("StatefulSet") or kind in volume_kinds or _has_claims(resource)


def _has_claims(resource: Registered) -> bool:
    spec = resource.inputs.get("spec") if resource.is_kubernetes else None
    return bool(isinstance(spec, dict) and spec.get("volumeClaimTemplates"))


def protection_problems(run: StackRun, root: Path = ROOT) -> list[str]:
    """Data outlives every delete: the namespace and volumes are retained, a StatefulSet's claims
    kept when it goes; where the stack's settings ask (``protectStateful``, whatever the stack's
    name), all of them are protected too: deleting them takes a deliberate second step."""
    production = stack_plan(run.stack, root).settings.environment.protect_stateful
    guarded = [r for r in run.resources
               if is_stateful(r) or (r.is_kubernetes and r.inputs.get("kind") == "Namespace")]
    volumes = [r for r in guarded if r.inputs.get("kind") in ("Namespace", "PersistentVolumeClaim", "PersistentVolume")]
    problems = [f"{r.urn}: retain_on_delete is not set" for r in volumes if not r.retain_on_delete]
    problems += [f"{r.urn}: its volume claims are not kept when it is deleted" for r in guarded if _has_claims(r)
                 and r.inputs["spec"].get("persistentVolumeClaimRetentionPolicy", {}).get("whenDeleted") != "Retain"]
    if production:
        problems += [f"{r.urn}: protect is not set in {run.stack}, whose settings protect its data"
                     for r in guarded if not r.protect]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stacks (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--update", action="store_true", help="rewrite the snapshots")
    options = parser.parse_args(argv)
    changed = False
    for stack in options.stacks or discover_stacks():
        current = snapshot_lines(run_stack(stack))
        found = compare(stack, current)
        if options.update:
            SNAPSHOTS.mkdir(parents=True, exist_ok=True)
            snapshot_path(stack).write_text("\n".join(current) + "\n")
            print(f"{stack}: wrote {len(current)} resources ({len(found.added)} added, {len(found.removed)} removed, "
                  f"{len(found.replaced)} replaced)")
        elif found:
            print(snapshot_message(stack, found))
        else:
            print(f"{stack}: {len(current)} resources, as in the snapshot")
        changed = changed or bool(found)
    return 0 if options.update or not changed else 1


if __name__ == "__main__":
    sys.exit(main())
