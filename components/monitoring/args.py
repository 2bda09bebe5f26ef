"""What alerts and dashboards are built from: handed over by the composition root, nothing more."""

from __future__ import annotations

from dataclasses import dataclass

from components.contracts import HealthProbe
from services.model import Dependency
from services.tiers import Tier
from settings.monitoring import MonitoringSettings
from settings.resolve import ResolvedService


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    """The platform as monitoring sees it: where it runs, what runs there, and the ``monitoring`` keys."""

    #: The platform namespace: every object is created there, every rule watches only it.
    namespace: str
    services: tuple[ResolvedService, ...]
    #: The health probe of each shared dependency that runs in the cluster and has a client: only those
    #: have an exporter here. A managed server is watched by its provider; an ``absent()`` of its health
    #: metric would page forever.
    dependencies: tuple[HealthProbe, ...]
    #: The watched dependencies that run replicated (Redis under Sentinel, PostgreSQL with standbys): they are
    #: down only when no server answers; Redis gets its sentinels' alerts.
    replicated: tuple[Dependency, ...] = ()
    #: The 5-field cron of PostgreSQL's base backups when it runs in the cluster with backups on (WAL archived,
    #: base backups scheduled); None otherwise: no archiving or backup-age alert would have anything to watch.
    postgres_backup_schedule: str | None = None
    monitoring: MonitoringSettings

    def in_tier(self, tier: Tier) -> list[ResolvedService]:
        return [service for service in self.services if service.tier == tier]
