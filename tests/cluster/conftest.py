"""The local cluster for the end-to-end tests: started once per session, stopped if we started it.

The stacks are deployed by ``python -m tools.cluster.deploy`` in a process of its own (the
program's global Pulumi settings must not meet the mocks of the other tests), exactly as
``make up`` does it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import in_ci
from tools.cluster.local_cluster import LocalCluster
from tools.cluster.toolchain import ROOT, toolchain


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    if missing := toolchain().missing():
        message = f"the local cluster's tools are not built ({missing[0]}): `make tools` builds them"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    cluster = LocalCluster()
    started_here = not cluster.running()
    cluster.start()
    yield cluster
    if started_here:
        cluster.stop()


@dataclass
class Outcome:
    returncode: int
    summary: dict[str, Any]
    output: str

    @property
    def changes(self) -> dict[str, int]:
        return {step: count for step, count in self.summary.get("changes", {}).items() if step != "same"}


def deploy(action: str, stack: str, stack_file: Path | None = None, *extra: str) -> Outcome:
    """One ``tools.cluster.deploy`` run; its JSON summary and everything it printed."""
    args = [sys.executable, "-m", "tools.cluster.deploy", action, stack, *extra]
    if stack_file is not None:
        args += ["--stack-file", str(stack_file)]
    result = subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return Outcome(result.returncode, summary, result.stdout + result.stderr)


def objects(cluster: LocalCluster, kinds: str, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(cluster.kubectl("get", kinds, "-n", namespace, "-o", "json"))["items"]
    return items


def live(cluster: LocalCluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))
    return found


def stack_file_with(stack: str, folder: Path, name: str, changes: dict[str, Any]) -> Path:
    """``Pulumi.<stack>.yaml`` with ``changes`` (``{"environment": {...}}``...) merged into its config."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config = document.setdefault("config", {})
    for key, value in changes.items():
        config[f"codai-platform:{key}"] = _merged(config.get(f"codai-platform:{key}", {}), value)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in override.items()}}
    return override
