"""``make down``: destroy every stack deployed on the local cluster, then stop it and remove its state.

Stacks are destroyed through Pulumi (not by stopping the cluster under them), so that a
destroy that would fail, for instance on a protected resource, says so. ``--force`` stops the
cluster even then.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.cluster.deploy import operate
from tools.cluster.local_cluster import STATE, LocalCluster, say


def deployed_stacks() -> list[tuple[str, str]]:
    """``(stack, stack file)`` of each stack the local backend has settings for."""
    projects = STATE / "projects"
    return sorted((folder.name, str(folder / f"Pulumi.{folder.name}.yaml"))
                  for folder in projects.iterdir()) if projects.is_dir() else []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster.down", description=__doc__)
    parser.add_argument("--force", action="store_true", help="stop the cluster even if a destroy fails")
    args = parser.parse_args(argv)
    cluster = LocalCluster()
    failed = []
    if cluster.running():
        for stack, stack_file in deployed_stacks():
            say(f"destroying stack {stack}")
            try:
                operate("destroy", stack, Path(stack_file), policy=False)
            except Exception as error:
                say(f"destroying {stack} failed: {error}")
                failed.append(stack)
    if failed and not args.force:
        say(f"the cluster is left running for a look at {', '.join(failed)}. A protected stack is destroyed after "
            "`.venv/bin/python -m tools.cluster.deploy unprotect STACK`; `make down FORCE=1` stops the cluster anyway")
        return 1
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
