"""What the monitoring tests watch: staging with rollouts, and its rule groups written as rule files.

The fixtures built from these (``rollouts_plan``, ``rollouts_namespace``, ``rollouts_groups``,
``rollouts_rule_dir``) are in tests/conftest.py, so the rule and signal tests share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from components.monitoring.args import ObservabilityArgs
from components.monitoring.rules import RuleGroup, rule_file
from components.platform import observability_args
from services.model import Dependency
from settings.loader import StackPlan, load_settings
from tools.alertmanager_config import dump_yaml
from tools.offline import stack_values

STACK = "staging"
#: Staging plus a canary (codai) and blue-green colours (wallet): Deployments named after tracks.
ROLLOUTS = {
    "codai": {"rollout": {"strategy": "canary", "canary": {"image": {"tag": "2024.12.2"}}}},
    "wallet": {"rollout": {"strategy": "blueGreen", "blueGreen": {"active": "blue"}}},
}


#: Redis replicated under Sentinel, as in production: the monitoring tests see its alerts too.
REPLICATED_REDIS = {"instances": 3}
#: Production's data tier, stated here rather than read from a sizing profile: PostgreSQL as a CloudNativePG
#: primary and two standbys, Redis as three servers under Sentinel. Both get their replication alerts.
REPLICATED = (Dependency.POSTGRES, Dependency.REDIS)
#: PostgreSQL's health metric: the CloudNativePG instance manager's (its provider's ``HealthProbe``).
POSTGRES_UP = "cnpg_collector_up"
#: The instance pods CloudNativePG names after the Cluster (``<cluster>-<n>``), the first one the primary.
POSTGRES_PODS = ("postgres-cluster-1", "postgres-cluster-2", "postgres-cluster-3")


def platform_with(services: dict[str, Any], monitoring: dict[str, Any] | None = None,
                  redis: dict[str, Any] | None = None, postgres: dict[str, Any] | None = None) -> StackPlan:
    """The stack's settings with ``services`` and ``postgres`` overrides merged in, ``monitoring`` and ``redis``
    replaced."""
    config = stack_values(STACK)
    config["services"] = {**config.get("services", {}), **services}
    if monitoring is not None:
        config["monitoring"] = monitoring
    if redis is not None:
        config["redis"] = redis
    if postgres is not None:
        config["postgres"] = _merged(config.get("postgres", {}), postgres)
    return load_settings(STACK, config)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def watched(plan: StackPlan) -> ObservabilityArgs:
    """What the composition root hands monitoring for ``plan``, with ``REPLICATED`` replicated whatever the plan's
    sizing says."""
    return replace(observability_args(plan), replicated=REPLICATED)


def write_rule_files(groups: Mapping[str, RuleGroup], folder: Path) -> Path:
    """Each group as ``<key>.yaml`` in ``folder``, the rule files promtool reads."""
    for key, group in groups.items():
        (folder / f"{key}.yaml").write_text(dump_yaml(rule_file(group)))
    return folder
