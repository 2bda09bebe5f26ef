"""Preview, deploy or destroy a stack on the local cluster, through the real Pulumi engine.

    python -m tools.cluster.deploy preview STACK [--stack-file FILE] [--no-policy-pack]
    python -m tools.cluster.deploy up      STACK [--stack-file FILE] [--expect-no-changes]
    python -m tools.cluster.deploy destroy STACK [--stack-file FILE]
    python -m tools.cluster.deploy unprotect STACK    (pulumi state unprotect --all: before destroying
                                                       a stack whose settings protect it)

The program is this repository's ``__main__.py``, run by the Pulumi CLI built by
``tools/cluster/build.sh`` with the Kubernetes provider built beside it; the stack file is
``Pulumi.<STACK>.yaml`` unless another is named (the tests use their own). Every operation
runs the policy pack, as CI does. The last line printed is a JSON summary (``--json``: only it).
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from settings.loader import PROJECT
from tools.cluster.local_cluster import ClusterError, LocalCluster
from tools.cluster.pulumi_env import PulumiEnv, pulumi_env
from tools.cluster.toolchain import ROOT, ToolsMissingError

#: Resource operations at once. The CLI's default is 4 per core (8 here), but nearly every
#: operation is a wait on the cluster (a rollout's minReadySeconds, a Service's endpoints), not
#: work on this machine: with 8, the 29 services' Deployments queued behind each other.
PARALLEL = 64


def run_program() -> None:
    """The program, as the Python language host would run it."""
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def select_stack(env: PulumiEnv, stack: str, stack_file: Path) -> auto.Stack:
    workspace = auto.LocalWorkspaceOptions(
        work_dir=str(env.project_dir(stack, stack_file)),
        pulumi_home=str(env.home),
        env_vars=env.variables,
        pulumi_command=auto.PulumiCommand(root=str(env.tools.pulumi.parent.parent), skip_version_check=True),
    )
    return auto.create_or_select_stack(stack, project_name=PROJECT, program=run_program, opts=workspace)


def operate(action: str, stack_name: str, stack_file: Path, *, policy: bool = True,
            expect_no_changes: bool = False, quiet: bool = False,
            on_event: Callable[[auto.EngineEvent], None] | None = None) -> dict[str, Any]:
    """Run one operation; the summary: changes by kind of step, seconds, outputs."""
    env = pulumi_env()
    stack = select_stack(env, stack_name, stack_file)
    packs = [str(env.policy_pack)] if policy else None
    on_output = None if quiet else print
    started = time.monotonic()
    summary: dict[str, Any] = {"action": action, "stack": stack_name}
    if action == "preview":
        preview = stack.preview(policy_packs=packs, diff=False, parallel=PARALLEL, on_output=on_output, color="never")
        summary["changes"] = dict(preview.change_summary)
    elif action == "up":
        result = stack.up(policy_packs=packs, expect_no_changes=expect_no_changes or None, parallel=PARALLEL,
                          on_output=on_output, on_event=on_event, color="never")
        summary["changes"] = dict(result.summary.resource_changes or {})
        summary["outputs"] = {key: value.value for key, value in result.outputs.items() if not value.secret}
    elif action == "unprotect":
        # What docs/local-cluster.md tells a person to do before destroying a protected stack.
        subprocess.run([str(env.tools.pulumi), "state", "unprotect", "--all", "--yes", "--stack", stack_name],
                       cwd=stack.workspace.work_dir, env={**os.environ, **env.variables}, check=True,
                       stdout=None if on_output else subprocess.DEVNULL)
    elif action == "destroy":
        destroyed = stack.destroy(parallel=PARALLEL, on_output=on_output, color="never")
        summary["changes"] = dict(destroyed.summary.resource_changes or {})
    else:
        raise ValueError(action)
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["preview", "up", "destroy", "unprotect"])
    parser.add_argument("stack")
    parser.add_argument("--stack-file", type=Path, help="settings of the stack (default: Pulumi.<stack>.yaml)")
    parser.add_argument("--no-policy-pack", dest="policy", action="store_false")
    parser.add_argument("--expect-no-changes", action="store_true", help="fail when `up` would change anything")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args(argv)
    stack_file = args.stack_file or ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        parser.error(f"no stack file {stack_file}")
    if not LocalCluster().running():
        print("the local cluster is not running: `make cluster` (or `make up`) starts it", file=sys.stderr)
        return 2
    try:
        summary = operate(args.action, args.stack, stack_file.resolve(), policy=args.policy,
                          expect_no_changes=args.expect_no_changes, quiet=args.json)
    except (ToolsMissingError, ClusterError) as error:
        print(error, file=sys.stderr)
        return 2
    except (auto.errors.CommandError, subprocess.CalledProcessError) as error:
        print(str(error), file=sys.stderr)
        print(json.dumps({"action": args.action, "stack": args.stack, "failed": True}))
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
