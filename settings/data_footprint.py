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


def footprint(postgres: PostgresSettings, redis: RedisSettings, profile: SizingProfile, poolers: int) -> Footprint:
    """Requests of the data tier's servers, exporters, poolers and volumes (jobs come and go: see
    docs/data.md). ``poolers``: the PostgreSQL Poolers, one per tier with a PostgreSQL client."""
    cpu, memory, limits, storage, pods, claims = 0, 0, 0, 0, 0, 0
    for settings in (postgres, redis):
        if not settings.in_cluster:
            continue
        sizing = settings.sizing(profile)
        containers = settings.pod_containers(sizing)
        n = sizing.instances
        cpu += n * sum(c.cpu_request.millis for c in containers)
        memory += n * sum(c.memory_request.bytes for c in containers)
        limits += n * sum(c.memory_limit.bytes for c in containers)
        storage += n * sizing.storage.bytes
        pods += n
        claims += n
        if sizing.pooler is not None:
            pgbouncers = poolers * sizing.pooler_instances
            cpu += pgbouncers * sizing.pooler.cpu_request.millis
            memory += pgbouncers * sizing.pooler.memory_request.bytes
            limits += pgbouncers * sizing.pooler.memory_limit.bytes
            pods += pgbouncers
    backup = postgres.backup
    if backup.enabled and backup.target == "volume":
        storage += backup_storage(postgres, profile).bytes
        claims += 1
    return Footprint(Cpu(cpu), Memory(memory), Memory(limits), Memory(storage), pods, claims)
