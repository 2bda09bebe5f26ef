"""Requests, limits and volume sizes of the data servers, one sizing table row per profile."""

from __future__ import annotations

from dataclasses import dataclass

from settings.base import Problem
from settings.defaults import SizingProfile
from settings.quantities import Cpu, Memory
from settings.workload import Resources


@dataclass(frozen=True)
class ContainerResources:
    """Fully decided requests and limits of one container."""

    cpu_request: Cpu
    memory_request: Memory
    cpu_limit: Cpu
    memory_limit: Memory

    @classmethod
    def of(cls, requests: tuple[str, str], limits: tuple[str, str]) -> ContainerResources:
        """``of(("250m", "512Mi"), ("1", "1Gi"))``: a row of the sizing tables."""
        return cls(Cpu.parse(requests[0]), Memory.parse(requests[1]), Cpu.parse(limits[0]), Memory.parse(limits[1]))

    def overridden(self, override: Resources) -> ContainerResources:
        """These values with whatever ``override`` sets replacing them."""
        requests, limits = override.requests, override.limits
        return ContainerResources(
            cpu_request=requests.cpu or self.cpu_request,
            memory_request=requests.memory or self.memory_request,
            cpu_limit=limits.cpu or self.cpu_limit,
            memory_limit=limits.memory or self.memory_limit,
        )

    def problems(self, key: str) -> list[Problem]:
        """A request above its limit, reported at ``key`` (the stack-file path of the override)."""
        problems: list[Problem] = []
        if self.cpu_request > self.cpu_limit:
            problems.append((f"{key}.requests.cpu",
                             f"cpu request {self.cpu_request} is above its limit {self.cpu_limit}"))
        if self.memory_request > self.memory_limit:
            problems.append((f"{key}.requests.memory",
                             f"memory request {self.memory_request} is above its limit {self.memory_limit}"))
        return problems


@dataclass(frozen=True)
class ServerSizing:
    """One row of a server's sizing table."""

    server: ContainerResources
    storage: Memory
    #: The metrics exporter beside each server (Redis); None where the server exports its own
    #: metrics (CloudNativePG's instance manager does, inside the postgres container).
    exporter: ContainerResources | None = None
    #: Volume of the backup target (PostgreSQL only; unused by Redis, whose AOF is its persistence).
    backup_storage: Memory | None = None
    #: Servers of the in-cluster mode: PostgreSQL instances (a primary and standbys), or Redis
    #: servers (more than one means replication under Sentinel).
    instances: int = 1
    #: PgBouncer in front of PostgreSQL: its container, and the instances of each Pooler (one per tier).
    pooler: ContainerResources | None = None
    pooler_instances: int = 0


#: Containers that run for a short while (bootstrap, backup): the same in every profile.
JOB_RESOURCES = ContainerResources.of(("50m", "64Mi"), ("500m", "256Mi"))
BACKUP_RESOURCES = ContainerResources.of(("100m", "256Mi"), ("1", "1Gi"))
#: A Redis Sentinel and its exporter, beside each replicated Redis server: small, in every profile.
SENTINEL_RESOURCES = ContainerResources.of(("20m", "32Mi"), ("200m", "64Mi"))

POSTGRES_SIZING: dict[SizingProfile, ServerSizing] = {
    SizingProfile.MINIMAL: ServerSizing(
        server=ContainerResources.of(("250m", "1Gi"), ("1", "1Gi")),
        storage=Memory.parse("10Gi"),
        backup_storage=Memory.parse("20Gi"),
        pooler=ContainerResources.of(("20m", "32Mi"), ("200m", "64Mi")),
        pooler_instances=1,
    ),
    # Memory limit equal to the request: a database killed for memory loses its caches and connections.
    # A primary and two standbys on different nodes and zones; two PgBouncers per Pooler, so a drain
    # or a lost node leaves each tier one.
    SizingProfile.HIGH_AVAILABILITY: ServerSizing(
        server=ContainerResources.of(("1", "4Gi"), ("4", "4Gi")),
        storage=Memory.parse("100Gi"),
        backup_storage=Memory.parse("200Gi"),
        instances=3,
        pooler=ContainerResources.of(("100m", "64Mi"), ("500m", "128Mi")),
        pooler_instances=2,
    ),
}

REDIS_SIZING: dict[SizingProfile, ServerSizing] = {
    SizingProfile.MINIMAL: ServerSizing(
        server=ContainerResources.of(("100m", "256Mi"), ("500m", "256Mi")),
        exporter=ContainerResources.of(("20m", "32Mi"), ("200m", "64Mi")),
        storage=Memory.parse("2Gi"),
    ),
    # Three servers under three sentinels: one may fail, or be drained, without losing the master.
    SizingProfile.HIGH_AVAILABILITY: ServerSizing(
        server=ContainerResources.of(("250m", "1Gi"), ("1", "1Gi")),
        exporter=ContainerResources.of(("50m", "64Mi"), ("250m", "128Mi")),
        storage=Memory.parse("10Gi"),
        instances=3,
    ),
}
