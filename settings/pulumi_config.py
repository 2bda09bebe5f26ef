"""Read the stack's configuration through ``pulumi.Config`` and validate it as a whole."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from settings.loader import PROJECT, PlatformSettings, load_settings


def load_stack_settings() -> PlatformSettings:
    """The current stack's validated settings; raises SettingsError before any resource exists."""
    return load_settings(pulumi.get_stack(), read_project_config())


def read_project_config() -> dict[str, Any]:
    """Every ``codai-platform:*`` key of the stack, decoded from the engine's JSON strings.

    The key list comes from the engine's config map, so that a misspelt top-level key is
    reported instead of silently ignored; values are read with plain ``pulumi.Config``.
    """
    config = pulumi.Config(PROJECT)
    prefix = f"{PROJECT}:"
    keys = {key for key in (*runtime_config.CONFIG.get(), *runtime_config.get_config_env()) if key.startswith(prefix)}
    values: dict[str, Any] = {}
    for full_key in sorted(keys):
        key = full_key[len(prefix):]
        raw = config.get(key)
        if raw is None:
            continue
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw  # a plain string; the models say whether a string fits there
    return values
