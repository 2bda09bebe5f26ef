"""Read the stack's configuration through ``pulumi.Config`` and validate it as a whole."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from settings.loader import PROJECT, StackPlan, load_settings


def load_stack_plan() -> StackPlan:
    """The current stack's plan from its validated settings; raises SettingsError before any resource exists."""
    return load_settings(pulumi.get_stack(), read_project_config())


def read_project_config() -> dict[str, Any]:
    """Every ``codai-platform:*`` key of the stack, as the engine hands it over.

    The key list comes from the engine's config map, so that a misspelt top-level key is
    reported instead of silently ignored; values are read with plain ``pulumi.Config``.
    """
    config = pulumi.Config(PROJECT)
    prefix = f"{PROJECT}:"
    keys = {key for key in (*runtime_config.CONFIG.get(), *runtime_config.get_config_env()) if key.startswith(prefix)}
    return project_values({key: config.get(key[len(prefix):]) for key in keys})


def project_values(config: Mapping[str, str | None]) -> dict[str, Any]:
    """``codai-platform:<key>`` -> ``<key>``: the engine's strings decoded, objects from their JSON.

    The one decoding of stack configuration, for the program (from the engine) and for the
    offline tools (from the stack file, tools/offline.py), so the two cannot read a value apart.
    """
    prefix = f"{PROJECT}:"
    values: dict[str, Any] = {}
    for full_key in sorted(config):
        raw = config[full_key]
        if not full_key.startswith(prefix) or raw is None:
            continue
        try:
            values[full_key[len(prefix):]] = json.loads(raw)
        except json.JSONDecodeError:
            values[full_key[len(prefix):]] = raw  # a plain string; the models say whether a string fits there
    return values
