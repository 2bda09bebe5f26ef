"""What the monitoring tests watch: staging with rollouts, and its rule groups written as rule files.

The fixtures built from these (``rollouts_plan``, ``rollouts_namespace``, ``rollouts_groups``,
``rollouts_rule_dir``) are in tests/conftest.py, so the rule and signal tests share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.monitoring.rules import RuleGroup, rule_file
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


def platform_with(services: dict[str, Any], monitoring: dict[str, Any] | None = None,
                  redis: dict[str, Any] | None = None) -> StackPlan:
    """The stack's settings with ``services`` overrides merged in, ``monitoring`` and ``redis`` replaced."""
    config = stack_values(STACK)
    config["services"] = {**config.get("services", {}), **services}
    if monitoring is not None:
        config["monitoring"] = monitoring
    if redis is not None:
        config["redis"] = redis
    return load_settings(STACK, config)


def write_rule_files(groups: Mapping[str, RuleGroup], folder: Path) -> Path:
    """Each group as ``<key>.yaml`` in ``folder``, the rule files promtool reads."""
    for key, group in groups.items():
        (folder / f"{key}.yaml").write_text(dump_yaml(rule_file(group)))
    return folder
