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
    #: have an exporter here. A managed server is watched by its provider; ``absent(pg_up)`` would page forever.
    dependencies: tuple[HealthProbe, ...]
    #: The watched dependencies that run replicated (Redis under Sentinel): they get replication alerts.
    replicated: tuple[Dependency, ...] = ()
    monitoring: MonitoringSettings

    def in_tier(self, tier: Tier) -> list[ResolvedService]:
        return [service for service in self.services if service.tier == tier]
