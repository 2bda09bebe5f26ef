"""The root of a stack's configuration: one field per top-level config key."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from services.model import Dependency
from services.tiers import Tier
from settings.base import SettingsModel
from settings.data import PostgresSettings, RedisSettings, ServerSettings
from settings.environment import EnvironmentSettings
from settings.monitoring import MonitoringSettings
from settings.rollout import FlagValue, ImageOverride, RolloutSettings, check_flag_names
from settings.workload import WorkloadOverrides

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class ServiceOverrides(WorkloadOverrides):
    """What a stack may change for one service, on top of its tier."""

    image: ImageOverride = Field(default_factory=ImageOverride)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings, description="Rolling unless set.")
    feature_flags: dict[str, FlagValue] = Field(
        default_factory=dict,
        description="Runtime feature flags, rendered into the ConfigMap as FEATURE_<NAME>; a change rolls the pods.",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra non-secret settings, rendered into the service's ConfigMap."
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [key for key in value if not _ENV_NAME.match(key)]
        if bad:
            raise ValueError(f"environment variable names must be UPPER_SNAKE, got {bad}")
        return value

    @field_validator("feature_flags")
    @classmethod
    def _flag_names(cls, value: dict[str, FlagValue]) -> dict[str, FlagValue]:
        return check_flag_names(value)


class StackSettings(SettingsModel):
    """Everything a stack file may say. Each field is one ``codai-platform:<key>``."""

    environment: EnvironmentSettings
    tiers: dict[Tier, WorkloadOverrides] = Field(
        default_factory=dict, description="Per-tier overrides of the sizing profile."
    )
    services: dict[str, ServiceOverrides] = Field(
        default_factory=dict, description="Per-service overrides, keyed by catalog name."
    )
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @property
    def data_servers(self) -> dict[Dependency, ServerSettings]:
        """The settings of each shared dependency's server."""
        return {Dependency.POSTGRES: self.postgres, Dependency.REDIS: self.redis}


#: Top-level config keys, as written in stack files (``codai-platform:<key>``).
CONFIG_KEYS: tuple[str, ...] = tuple(
    (field.alias or name) for name, field in StackSettings.model_fields.items()
)
