"""The data tier's own alerts: a shared dependency unreachable, a volume filling up.

The data tier is every container of the namespace that is not a catalog service (PostgreSQL,
Redis, their exporters): its scope is ``signals.data_scope``. Its containers also get the
per-container alerts (``container_alerts``).
"""

from __future__ import annotations

from components.contracts import HealthProbe
from components.monitoring.alert_rules import CLAIM, PERCENT, AlertingRule, AlertName, RuleBuilder, percent
from components.monitoring.signals import Scope, eq
from services.model import Dependency
from services.tiers import Severity

#: Alert template: the master name Sentinel watches.
MASTER = "{{ $labels.master_name }}"

#: The alert raised when a shared dependency is unreachable (its provider declares its ``HealthProbe``).
DEPENDENCY_ALERTS: dict[Dependency, AlertName] = {
    Dependency.POSTGRES: AlertName.POSTGRES_DOWN,
    Dependency.REDIS: AlertName.REDIS_DOWN,
}


class DataAlerts(RuleBuilder):
    """The alerts on the data servers and their volumes."""

    def dependency_down(self, probe: HealthProbe, replicated: bool = False) -> AlertingRule:
        """One server: its exporter cannot reach it. Replicated: no server is reachable (one server down
        is a replica for the sentinels to replace: ``replica_unhealthy``, a warning, not a page).
        """
        scope, for_, dependency = self.scope, self.alerts.dependency_down_for, probe.dependency
        reached = scope.select(probe.signal)
        if replicated:
            reached = f"max by (namespace, service) ({reached})"
        # No pod reaching the server, or no exporter scraped at all (absent() keeps the matchers' labels).
        expr = f"{reached} == 0\nor\nabsent({scope.select(probe.signal, eq('service', dependency.value))})"
        product = probe.product
        reach = (f"exporters in {scope.namespace} cannot reach any of its servers" if replicated
                 else f"exporter in {scope.namespace} cannot reach {product}")
        return self.rule(
            DEPENDENCY_ALERTS[dependency], Severity.CRITICAL, expr, for_=for_,
            summary=f"{product} is unreachable",
            description=f"The {product} {reach} (`{probe.metric}` is 0), or the exporter itself is not scraped, "
                        f"for {for_}. Services using {product} fail.",
        )

    def sentinel_quorum(self) -> AlertingRule:
        """Replicated Redis: fewer sentinels agree than a failover needs (the next failure is an outage)."""
        for_ = self.alerts.dependency_down_for
        expr = f"min by (namespace, master_name) ({self.scope.select('redis_sentinel_master_ckquorum_status')}) == 0"
        return self.rule(
            AlertName.REDIS_SENTINEL_NO_QUORUM, Severity.CRITICAL, self._redis(expr), for_=for_,
            summary="Redis Sentinel cannot reach a quorum",
            description=f"The sentinels watching Redis master {MASTER} in {self.scope.namespace} report that too "
                        f"few of them agree to fail over (SENTINEL CKQUORUM), for {for_}. Redis still serves, "
                        "but losing its master now would not promote a replica.",
        )

    def replica_unhealthy(self) -> AlertingRule:
        """Replicated Redis: a replica the sentinels know is down or not following the master."""
        scope, for_ = self.scope, self.alerts.crash_loop_for
        known, healthy = (scope.select(f"redis_sentinel_master_{kind}") for kind in ("slaves", "ok_slaves"))
        expr = f"max by (namespace, master_name) ({known} - {healthy}) > 0"
        return self.rule(
            AlertName.REDIS_REPLICA_UNHEALTHY, Severity.WARNING, self._redis(expr), for_=for_,
            summary="A Redis replica is down",
            description=f"{{{{ $value }}}} replica(s) of Redis master {MASTER} in {scope.namespace} have been down or "
                        f"unreachable for {for_}: one more failure may leave no replica to promote.",
        )

    @staticmethod
    def _redis(expr: str) -> str:
        """The ``service`` label routing and inhibition use: these alerts are Redis's."""
        return Scope.service_from(expr, "namespace", ".*", Dependency.REDIS.value)

    def disk(self) -> AlertingRule:
        scope, alerts = self.scope, self.alerts
        by = "by (namespace, persistentvolumeclaim)"
        expr = (f"max {by} ({scope.select('kubelet_volume_stats_used_bytes')})\n/\n"
                f"max {by} ({scope.select('kubelet_volume_stats_capacity_bytes')})\n> {alerts.disk_critical}")
        # StatefulSet claims are <template>-<statefulset>-<ordinal>: the StatefulSet is the service.
        expr = scope.service_from(scope.service_from(expr, "persistentvolumeclaim"), "persistentvolumeclaim",
                                  "[^-]+-(.+)-[0-9]+")
        return self.rule(
            AlertName.DISK_SATURATION, Severity.CRITICAL, expr, for_=alerts.disk_for,
            summary=f"Volume {CLAIM} is {PERCENT} full",
            description=f"PersistentVolumeClaim {CLAIM} has been more than {percent(alerts.disk_critical)} full for "
                        f"{alerts.disk_for}; writes fail when it is full.",
        )
