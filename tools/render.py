"""Offline render: every Kubernetes object a stack deploys, as YAML, without the CLI or a cluster.

    python -m tools.render [STACK ...] [--out dist]

Runs the real program under Pulumi's mocks (tools/offline.py), writes one file per object
to ``dist/<stack>/<kind in lowercase>/<name>.yaml`` (secret values redacted, output deterministic),
``dist/<stack>/alertmanager.yml``, what its AlertmanagerConfig amounts to (tools/alertmanager_config.py), and
prints a summary per stack: services by tier, the data tier, objects by kind, requests
against the quota.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from services.tiers import Tier
from settings.loader import SettingsError, StackPlan
from tools.alertmanager_config import dump_yaml, write_alertmanager_config
from tools.offline import ROOT, StackRun, discover_stacks, run_stack, stack_config, stack_plan


def object_path(obj: dict[str, Any]) -> Path:
    """Where an object is written: ``<kind in lowercase>/<name>.yaml`` (a stack has one namespace)."""
    meta = obj["metadata"]
    return Path(obj["kind"].lower()) / f"{meta['name']}.yaml"


def write_stack(run: StackRun, out: Path) -> list[Path]:
    """Write a stack's objects under ``out/<stack>``, replacing an earlier render."""
    target = out / run.stack
    if target.exists():
        shutil.rmtree(target)
    written = []
    for obj in sorted(run.kubernetes_objects(), key=lambda o: (o["kind"], o["metadata"]["name"])):
        path = target / object_path(obj)
        if path.exists():
            raise SystemExit(f"{run.stack}: two {obj['kind']} objects named {obj['metadata']['name']!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(_ordered(obj)))
        written.append(path)
    written.append(write_alertmanager_config(run, out))
    return written


def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first (as people read manifests), everything else sorted."""
    head = ("apiVersion", "kind", "metadata")
    body = {key: obj[key] for key in head if key in obj}
    body.update({key: _sorted(obj[key]) for key in sorted(obj) if key not in head})
    body["metadata"] = _sorted(body["metadata"])
    return body


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def summary(run: StackRun, plan: StackPlan, seconds: float) -> str:
    objects = run.kubernetes_objects()
    lines = [f"== {run.stack}: {len(objects)} Kubernetes objects, {len(run.resources)} resources ({seconds:.2f}s)"]
    lines.append(f"   namespace {plan.settings.environment.namespace}, "
                 f"domain {plan.settings.environment.domain}, sizing {plan.settings.environment.sizing}")
    for tier in Tier:
        services = plan.in_tier(tier)
        if services:
            sizes = sorted({f"{s.replicas_min}-{s.replicas_max}" for s in services})
            lines.append(f"   {tier.value:<9} {len(services):>2} services, replicas {', '.join(sizes)}: "
                         + ", ".join(s.name for s in services))
    lines.append(_data_tier(plan))
    kinds = Counter(obj["kind"] for obj in objects)
    lines.append("   objects: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    low, high, data = plan.demand(at_max=False), plan.demand(), plan.data_tier
    quota = plan.quota
    lines.append(f"   requests.cpu     {low.cpu!s:>7} at min replicas, {high.cpu!s:>7} at max / quota "
                 f"{quota.requests_cpu}")
    lines.append(f"   requests.memory  {low.memory!s:>7} at min replicas, {high.memory!s:>7} at max / quota "
                 f"{quota.requests_memory}")
    lines.append(f"   limits.memory    {'':>7}                 {high.memory_limits!s:>7} at max / quota "
                 f"{quota.limits_memory}")
    lines.append(f"   requests.storage {data.storage_requests!s:>7} in {data.persistent_volume_claims} volume claims"
                 f" / quota {quota.requests_storage}, {quota.persistent_volume_claims} claims")
    return "\n".join(lines)


def _data_tier(plan: StackPlan) -> str:
    settings = plan.settings
    parts = []
    for dependency, server in settings.data_servers.items():
        external = server.external_server
        parts.append(f"{dependency} {external.host}:{external.port} (external)" if external
                     else f"{dependency} in-cluster, {server.sizing(settings.environment.sizing).storage} volume")
    backup = settings.postgres.backup
    kept = f"retention {backup.retention}" if settings.postgres.in_cluster else f"keep {backup.keep}"
    parts.append(f"backups {backup.target}, {kept}" if backup.enabled else "backups off")
    return "   data      " + ", ".join(parts)


def render_stack(stack: str, out: Path) -> tuple[int, str]:
    """Render one stack; returns (exit code, what to print)."""
    began = time.perf_counter()
    try:
        config, secret_keys = stack_config(stack)
        run = run_stack(stack, config, secret_keys)
    except SettingsError as error:
        return 1, str(error)
    written = write_stack(run, out)
    plan = stack_plan(stack)
    return 0, f"{summary(run, plan, time.perf_counter() - began)}\n   wrote {len(written)} files to {out / stack}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stacks to render (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="stacks rendered at once")
    options = parser.parse_args(argv)
    stacks = options.stacks or discover_stacks()
    started = time.perf_counter()
    jobs = max(1, min(options.jobs, len(stacks)))
    if jobs == 1:
        results = [render_stack(stack, options.out) for stack in stacks]
    else:
        # One process per stack: the Pulumi runtime is single-threaded, and stacks are independent.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(render_stack, stacks, [options.out] * len(stacks)))
    for code, text in results:
        print(text, file=sys.stderr if code else sys.stdout)
    failed = [stack for stack, (code, _) in zip(stacks, results, strict=True) if code]
    if failed:
        print(f"not rendered: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"rendered {len(stacks)} stack(s) in {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
