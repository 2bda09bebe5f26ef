"""How an alert rule is written: the alert names, the rule's shape, its annotation templates, and its labels.

Every alert carries ``severity``, ``tier``, ``service`` and ``namespace`` labels: ``namespace`` is
what the AlertmanagerConfig's route matches on (the operator adds that matcher), ``service`` is
what inhibition compares. :class:`RuleBuilder` sets the static ones; ``service`` comes from each
expression (``Scope.service_from``) or from the recorded signal it reads.

The families of rules extend :class:`RuleBuilder`: the recording rules of the signals
(``recording_rules``), the per-service alerts of a catalog tier (``service_alerts``), the
per-container alerts of every scope (``container_alerts``) and the data tier's (``data_alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from components.monitoring.signals import Scope
from services.tiers import Severity
from settings.monitoring import AlertSettings, MonitoringSettings


class AlertName(StrEnum):
    """Every alert the platform raises; each has docs/runbooks/<name>.md."""

    SERVICE_DOWN = "ServiceDown"
    ERROR_RATIO_HIGH = "ErrorRatioHigh"
    LATENCY_HIGH = "LatencyHigh"
    CPU_SATURATION = "CpuSaturation"
    MEMORY_SATURATION = "MemorySaturation"
    DISK_SATURATION = "DiskSaturation"
    POD_CRASH_LOOPING = "PodCrashLooping"
    POSTGRES_DOWN = "PostgresDown"
    REDIS_DOWN = "RedisDown"
    REDIS_SENTINEL_NO_QUORUM = "RedisSentinelNoQuorum"
    REDIS_REPLICA_UNHEALTHY = "RedisReplicaUnhealthy"
    POSTGRES_REPLICATION_LAG_HIGH = "PostgresReplicationLagHigh"
    POSTGRES_WAL_ARCHIVING_FAILING = "PostgresWalArchivingFailing"
    POSTGRES_BACKUP_TOO_OLD = "PostgresBackupTooOld"
    POSTGRES_POOL_SATURATED = "PostgresPoolSaturated"
    CERTIFICATE_EXPIRING = "CertificateExpiring"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    ROLLOUT_STUCK = "RolloutStuck"
    REPLICAS_MISMATCH = "ReplicasMismatch"


# A Prometheus rule as written in a rule file (and in a PrometheusRule's spec.groups[].rules).
AlertingRule = TypedDict(
    "AlertingRule",
    {"alert": str, "expr": str, "for": str, "labels": dict[str, str], "annotations": dict[str, str]},
)


def percent(ratio: float) -> str:
    """``0.025`` -> ``2.5%`` (a threshold exactly as configured, not rounded to a whole percent)."""
    return f"{ratio * 100:.4g}%"


#: Alert templates, expanded by Prometheus when an alert fires.
SERVICE, POD, CONTAINER = "{{ $labels.service }}", "{{ $labels.pod }}", "{{ $labels.container }}"
DEPLOYMENT, CLAIM, NAME = "{{ $labels.deployment }}", "{{ $labels.persistentvolumeclaim }}", "{{ $labels.name }}"
PERCENT = "{{ $value | humanizePercentage }}"


@dataclass(frozen=True)
class RuleBuilder:
    """Builds the rules of one scope from the stack's monitoring settings."""

    scope: Scope
    monitoring: MonitoringSettings

    @property
    def alerts(self) -> AlertSettings:
        return self.monitoring.alerts

    def rule(self, name: AlertName, severity: Severity, expr: str, *,
             for_: str, summary: str, description: str) -> AlertingRule:
        return {
            "alert": name.value,
            "expr": expr,
            "for": for_,
            # Static, so that no expression can lose them: routing needs namespace and severity.
            "labels": {"severity": severity.value, "tier": self.scope.tier, "namespace": self.scope.namespace},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": self.monitoring.runbook_url(name),
            },
        }
