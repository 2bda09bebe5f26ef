"""The native alertmanager.yml each stack's AlertmanagerConfig amounts to, for ``amtool``.

    python -m tools.alertmanager_config [STACK ...] [--out dist]

Runs the program under mocks (tools/offline.py), converts every rendered AlertmanagerConfig
as the Prometheus operator does (components/monitoring/alertmanager.py) and writes
``<out>/<stack>/alertmanager.yml``, with placeholders where the operator puts the receiver
Secrets' values. Check it with ``amtool check-config`` and ``amtool config routes test``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from components.monitoring import ALERTMANAGER_CONFIG
from components.monitoring.alertmanager import native_config
from tools.offline import ROOT, StackRun, discover_stacks, run_stack


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (templates, PromQL) as literal blocks, so the file reads as written."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def native_configs(run: StackRun) -> dict[str, dict[str, Any]]:
    """alertmanager.yml content per rendered AlertmanagerConfig, by object name."""
    api_version, kind = ALERTMANAGER_CONFIG
    return {
        obj["metadata"]["name"]: native_config(obj["spec"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        for obj in run.kubernetes_objects()
        if obj.get("apiVersion") == api_version and obj.get("kind") == kind
    }


def write_alertmanager_config(run: StackRun, out: Path) -> Path:
    """Writes ``<out>/<stack>/alertmanager.yml``; exactly one AlertmanagerConfig is expected per stack."""
    configs = native_configs(run)
    if len(configs) != 1:
        raise SystemExit(f"{run.stack}: expected one AlertmanagerConfig, found {sorted(configs) or 'none'}"
                         " (is the Observability component part of the platform?)")
    path = out / run.stack / "alertmanager.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(next(iter(configs.values()))))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stacks (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist)")
    options = parser.parse_args(argv)
    for stack in options.stacks or discover_stacks():
        print(write_alertmanager_config(run_stack(stack), options.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
