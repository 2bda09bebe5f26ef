"""Prometheus rules, generated from the resolved services and the stack's alert settings.

One rule group per catalog tier (every service of the tier in one regex, the tier's own
severities and latency objective) and one for the data tier (PostgreSQL with its standbys, WAL
archive, backups and pools, Redis, volumes, and any container of the namespace that is not a
catalog service). Nothing here names a service: adding one to the catalog adds it to its tier's
rules.

Each group starts with the recording rules of its signals (components/monitoring/signals.py,
recorded by recording_rules.py): the alerts compare those recorded series with their thresholds,
and the dashboards draw the same series, so an alert and its panel cannot measure differently.
The metrics contract the rules rely on is in docs/monitoring.md.

This module says which rules each group has, in which order; the rules themselves are built in
``service_alerts`` (a catalog tier's services), ``data_alerts`` (the data tier),
``container_alerts`` (every group's containers) on the vocabulary of ``alert_rules`` (the
alert names, the rule's shape and labels). Every expression selects the platform namespace only.
"""

from __future__ import annotations

from typing import TypedDict

from components.labels import DATA_TIER
from components.monitoring.alert_rules import AlertingRule, AlertName
from components.monitoring.args import ObservabilityArgs
from components.monitoring.container_alerts import ContainerAlerts
from components.monitoring.data_alerts import DataAlerts
from components.monitoring.recording_rules import SignalRules
from components.monitoring.service_alerts import ServiceAlerts
from components.monitoring.signals import RecordingRule, Scope, data_scope, tier_scope
from services.model import Dependency
from services.tiers import TIER_POLICIES, Tier
from settings.monitoring import MonitoringSettings

__all__ = ["AlertName", "AlertingRule", "RuleGroup", "rule_file", "rule_groups"]


class RuleGroup(TypedDict):
    name: str
    #: The recording rules of the group's signals first, then its alerts (which read them).
    rules: list[RecordingRule | AlertingRule]


def _tier_rules(scope: Scope, monitoring: MonitoringSettings, tier: Tier) -> list[RecordingRule | AlertingRule]:
    signals, services = SignalRules(scope, monitoring), ServiceAlerts(scope, monitoring)
    containers = ContainerAlerts(scope, monitoring)
    built: list[RecordingRule | AlertingRule] = [
        *signals.service_signals(), *signals.container_signals(),
        services.service_down(TIER_POLICIES[tier].down_severity), *services.error_ratio(), services.latency(tier),
        *containers.saturation(), containers.crash_loop()]
    if scope.certificates:
        built.append(services.certificate())
    return built + services.rollouts()


def _postgres_rules(data: DataAlerts, args: ObservabilityArgs) -> list[AlertingRule]:
    """PostgreSQL watched (in the cluster, with clients): its standbys' lag (every instance reports it, a primary
    alone 0, so one instance needs no rule of its own) and its pools; backups on, its WAL archive and the age of
    its base backups (CloudNativePG archives only when backups are on)."""
    if Dependency.POSTGRES not in {probe.dependency for probe in args.dependencies}:
        return []
    schedule = args.postgres_backup_schedule
    backups = [data.wal_archiving(), data.backup_age(schedule)] if schedule is not None else []
    return [data.replication_lag(), *backups, data.pool_saturated()]


def _data_rules(scope: Scope, args: ObservabilityArgs) -> list[RecordingRule | AlertingRule]:
    monitoring, dependencies, replicated = args.monitoring, args.dependencies, args.replicated
    signals, data = SignalRules(scope, monitoring), DataAlerts(scope, monitoring)
    containers = ContainerAlerts(scope, monitoring)
    sentinel = [data.sentinel_quorum(), data.replica_unhealthy()] if Dependency.REDIS in replicated else []
    return [*(signals.dependency_signal(d) for d in dependencies), *signals.container_signals(),
            *(data.dependency_down(d, d.dependency in replicated) for d in dependencies), *sentinel,
            *_postgres_rules(data, args), data.disk(), *containers.saturation(), containers.crash_loop()]


def rule_groups(args: ObservabilityArgs) -> dict[str, RuleGroup]:
    """Every rule group, by its key (a tier name, or ``data``); each is one PrometheusRule."""
    monitoring = args.monitoring
    groups: dict[str, list[RecordingRule | AlertingRule]] = {
        tier.value: _tier_rules(tier_scope(args, tier), monitoring, tier)
        for tier in Tier if args.in_tier(tier)
    }
    groups[DATA_TIER] = _data_rules(data_scope(args), args)
    return {key: {"name": f"codai.{key}", "rules": rules} for key, rules in groups.items()}


def rule_file(group: RuleGroup) -> dict[str, list[RuleGroup]]:
    """A group as a Prometheus rule file, the input of ``promtool check rules``."""
    return {"groups": [group]}
