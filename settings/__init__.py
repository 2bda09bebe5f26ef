"""Typed stack configuration: the single source of truth for what a stack deploys."""

from settings.loader import PROJECT, SettingsError, StackPlan, load_settings
from settings.resolve import ResolvedService
from settings.stack import CONFIG_KEYS, StackSettings

__all__ = [
    "CONFIG_KEYS",
    "PROJECT",
    "ResolvedService",
    "SettingsError",
    "StackPlan",
    "StackSettings",
    "load_settings",
]
