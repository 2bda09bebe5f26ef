"""Typed stack configuration: the single source of truth for what a stack deploys."""

from settings.loader import PROJECT, PlatformSettings, SettingsError, load_settings
from settings.resolve import ResolvedService
from settings.stack import CONFIG_KEYS, StackSettings

__all__ = [
    "CONFIG_KEYS",
    "PROJECT",
    "PlatformSettings",
    "ResolvedService",
    "SettingsError",
    "StackSettings",
    "load_settings",
]
