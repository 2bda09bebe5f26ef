"""The URN of every resource per stack, kept as a committed snapshot.

    python -m tools.urns            # compare every stack with tests/snapshots/urns-<stack>.txt
    python -m tools.urns --update   # rewrite the snapshots (after a deliberate rename)

A changed URN is a delete and a create on the next ``pulumi up``: for a database, data loss.
The snapshot makes every such change visible in review; rename on purpose with an ``alias``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.offline import ROOT, StackRun, discover_stacks, run_stack

SNAPSHOTS = ROOT / "tests" / "snapshots"


def snapshot_path(stack: str) -> Path:
    return SNAPSHOTS / f"urns-{stack}.txt"


def urns(run: StackRun) -> list[str]:
    return sorted(resource.urn for resource in run.resources)


def difference(stack: str, current: Sequence[str]) -> tuple[list[str], list[str]]:
    """(added, removed) against the committed snapshot."""
    path = snapshot_path(stack)
    recorded = path.read_text().split() if path.exists() else []
    return sorted(set(current) - set(recorded)), sorted(set(recorded) - set(current))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite the snapshots")
    options = parser.parse_args(argv)
    changed = False
    for stack in discover_stacks():
        current = urns(run_stack(stack))
        added, removed = difference(stack, current)
        if options.update:
            SNAPSHOTS.mkdir(parents=True, exist_ok=True)
            snapshot_path(stack).write_text("\n".join(current) + "\n")
        print(f"{stack}: {len(current)} URNs, {len(added)} added, {len(removed)} removed")
        for urn in added:
            print(f"  + {urn}")
        for urn in removed:
            print(f"  - {urn}")
        changed = changed or bool(added or removed)
    return 0 if options.update or not changed else 1


if __name__ == "__main__":
    sys.exit(main())
