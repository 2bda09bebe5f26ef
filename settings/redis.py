"""``codai-platform:redis``: the Redis server's settings, in the cluster or managed."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from settings.base import Problem
from settings.data_server import ExternalServer, ServerSettings
from settings.data_sizing import REDIS_SIZING, SENTINEL_RESOURCES, ContainerResources, ServerSizing
from settings.data_values import PinnedImage
from settings.defaults import SizingProfile
from settings.workload import Resources

#: Redis ``maxmemory-policy``: what Redis does when it reaches the memory it may use.
EvictionPolicy = Literal[
    "noeviction", "volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-ttl"
]


class ExternalRedis(ExternalServer):
    port: int = Field(default=6379, ge=1, le=65535, description="Port of the server.")
    tls: bool = Field(default=True, description="Connect with TLS (rediss://), checked against the system CAs.")
    disable_default_user: bool = Field(
        default=True, description="The bootstrap turns Redis's `default` user off. Set false only when the "
        "provider manages that user itself."
    )


class RedisSettings(ServerSettings):
    """``codai-platform:redis``: the Redis server every service with a cache uses."""

    sizing_table: ClassVar[dict[SizingProfile, ServerSizing]] = REDIS_SIZING
    key: ClassVar[str] = "redis"

    image: PinnedImage = Field(default="redis:7.2.5-alpine", description="Server image (in-cluster), also used by "
                               "the bootstrap job of an external server; Redis 7.2.5 when unset.")
    exporter_image: PinnedImage = Field(default="oliver006/redis_exporter:v1.62.0",
                                        description="Metrics exporter image (in-cluster).")
    exporter_resources: Resources = Field(default_factory=Resources, description="Requests and limits of the "
                                          "metrics exporter; unset values come from the sizing profile.")
    maxmemory_percent: int = Field(
        default=80, ge=10, le=95, description="Share of the memory limit Redis may fill with data (maxmemory); the "
        "rest is for the process itself, buffers and AOF rewrites. 80 when unset."
    )
    eviction_policy: EvictionPolicy = Field(
        default="volatile-lru", description="What Redis does when full: volatile-lru (the default) evicts keys "
        "that have a TTL; writes of other keys are then refused rather than silently losing them."
    )
    external: ExternalRedis | None = Field(default=None, description="The managed server; required when mode is "
                                           "external.")
    instances: int | None = Field(
        default=None, ge=1, le=9, description="Redis servers (in-cluster): 1, or an odd number from 3 replicated "
        "under Sentinel, one sentinel beside each server. The sizing profile's when unset: 1 for minimal, 3 for "
        "highAvailability."
    )

    @field_validator("instances")
    @classmethod
    def _odd(cls, instances: int | None) -> int | None:
        # Each server has its sentinel: with an even count, losing half leaves no majority to fail over.
        if instances is not None and instances % 2 == 0:
            raise ValueError(f"{instances} instances: use 1, or an odd number from 3, so that a majority of the "
                             "sentinels remains to elect a new master when one server is lost")
        return instances

    def instance_count(self, row: ServerSizing) -> int:
        return self.instances or row.instances

    def exporter_sizing(self, row: ServerSizing) -> ContainerResources | None:
        assert row.exporter is not None  # every Redis row has its exporter
        return row.exporter.overridden(self.exporter_resources)

    def problems(self, profile: SizingProfile) -> list[Problem]:
        exporter = self.sizing(profile).exporter
        assert exporter is not None
        return super().problems(profile) + exporter.problems(f"{self.key}.exporterResources")

    def pod_containers(self, sizing: ServerSizing) -> list[ContainerResources]:
        """Replicated: a sentinel and the sentinel's exporter beside each server."""
        sentinel = [SENTINEL_RESOURCES, SENTINEL_RESOURCES] if sizing.instances > 1 else []
        return [*super().pod_containers(sizing), *sentinel]

    @model_validator(mode="after")
    def _rules(self) -> RedisSettings:
        self._check_mode(self.external)
        if self.external is not None and self.instances is not None:
            raise ValueError("instances is set but mode is external: the provider runs the managed server's replicas")
        return self
