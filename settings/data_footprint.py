"""The data tier's footprint: the quota its always-running servers, exporters and volumes take."""

from __future__ import annotations

from dataclasses import dataclass

from settings.defaults import SizingProfile
from settings.postgres import PostgresSettings, backup_storage
from settings.quantities import Cpu, Memory
from settings.redis import RedisSettings


@dataclass(frozen=True)
class Footprint:
    """What the always-running part of the data tier asks of the namespace quota."""

    cpu_requests: Cpu
    memory_requests: Memory
    memory_limits: Memory
    storage_requests: Memory
    pods: int
    persistent_volume_claims: int


def footprint(postgres: PostgresSettings, redis: RedisSettings, profile: SizingProfile) -> Footprint:
    """Requests of the data tier's servers, exporters and volumes (jobs come and go: see docs/data.md)."""
    cpu, memory, limits, storage, pods, claims = 0, 0, 0, 0, 0, 0
    for settings in (postgres, redis):
        if not settings.in_cluster:
            continue
        sizing = settings.sizing(profile)
        cpu += sizing.server.cpu_request.millis + sizing.exporter.cpu_request.millis
        memory += sizing.server.memory_request.bytes + sizing.exporter.memory_request.bytes
        limits += sizing.server.memory_limit.bytes + sizing.exporter.memory_limit.bytes
        storage += sizing.storage.bytes
        pods += 1
        claims += 1
    backup = postgres.backup
    if backup.enabled and backup.target == "volume":
        storage += backup_storage(postgres, profile).bytes
        claims += 1
    return Footprint(Cpu(cpu), Memory(memory), Memory(limits), Memory(storage), pods, claims)
