"""Service tiers and the policy each tier applies to its services.

A tier is policy, not code: the catalog says which tier a service is in, and
everything that differs between tiers (priority, scrape interval, alert severity,
rollout surge, disruption budget) is read from :data:`TIER_POLICIES`.
Sizing (replicas, resources) differs per environment as well as per tier, so it
lives in :mod:`settings.defaults`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    CORE = "core"
    BUSINESS = "business"
    SUPPORT = "support"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class TierPolicy:
    """What a tier means for every service in it."""

    tier: Tier
    #: PriorityClass value: core pods preempt business pods, which preempt support pods.
    priority: int
    #: Prometheus scrape interval and timeout (the timeout stays below the interval).
    scrape_interval_seconds: int
    scrape_timeout_seconds: int
    #: Severity of the alert raised when a service of this tier is down.
    down_severity: Severity
    #: RollingUpdate maxSurge: extra pods a rollout may start above the desired count.
    max_surge: str
    #: PodDisruptionBudget maxUnavailable. At least one pod, so a node can always drain.
    pdb_max_unavailable: int | str
    #: How long a pod is given to finish in-flight requests after SIGTERM.
    termination_grace_seconds: int
    #: PgBouncer's server connections per service database and pooler instance (transaction mode).
    #: Core services take every request's identity and memory lookups: twice the others' pool.
    #: settings/connection_budget.py checks the sum fits the server (docs/data.md).
    database_pool_size: int

    @property
    def scrape_interval(self) -> str:
        return f"{self.scrape_interval_seconds}s"

    @property
    def scrape_timeout(self) -> str:
        return f"{self.scrape_timeout_seconds}s"


TIER_POLICIES: dict[Tier, TierPolicy] = {
    Tier.CORE: TierPolicy(
        tier=Tier.CORE,
        priority=100_000,
        scrape_interval_seconds=15,
        scrape_timeout_seconds=10,
        down_severity=Severity.CRITICAL,
        max_surge="25%",
        pdb_max_unavailable=1,
        termination_grace_seconds=45,
        database_pool_size=4,
    ),
    Tier.BUSINESS: TierPolicy(
        tier=Tier.BUSINESS,
        priority=10_000,
        scrape_interval_seconds=30,
        scrape_timeout_seconds=20,
        down_severity=Severity.WARNING,
        max_surge="25%",
        pdb_max_unavailable=1,
        termination_grace_seconds=30,
        database_pool_size=2,
    ),
    Tier.SUPPORT: TierPolicy(
        tier=Tier.SUPPORT,
        priority=1_000,
        scrape_interval_seconds=60,
        scrape_timeout_seconds=30,
        down_severity=Severity.INFO,
        max_surge="50%",
        pdb_max_unavailable="50%",
        termination_grace_seconds=30,
        database_pool_size=2,
    ),
}
