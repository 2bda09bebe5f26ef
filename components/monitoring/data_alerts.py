"""The data tier's own alerts: a shared dependency unreachable, a volume filling up, Redis's replication,
PostgreSQL's standbys, WAL archive, base backups and PgBouncer pools.

The data tier is every container of the namespace that is not a catalog service (PostgreSQL,
Redis, their exporters): its scope is ``signals.data_scope``. Its containers also get the
per-container alerts (``container_alerts``).

PostgreSQL runs under CloudNativePG (operator v1.29.1): its metrics are the operator's own, each
read here from the source file named beside it (github.com/cloudnative-pg/cloudnative-pg at v1.29.1).
"""

from __future__ import annotations

from components.contracts import HealthProbe
from components.monitoring.alert_rules import CLAIM, PERCENT, POD, AlertingRule, AlertName, RuleBuilder, percent
from components.monitoring.cron import longest_interval
from components.monitoring.signals import Scope, eq
from services.model import Dependency
from services.tiers import Severity
from settings.base import duration_seconds

#: Alert template: the master name Sentinel watches.
MASTER = "{{ $labels.master_name }}"
#: Alert templates: a PgBouncer pool (database and user), a duration in seconds as Prometheus prints it.
POOL, DURATION = "{{ $labels.database }}/{{ $labels.user }}", "{{ $value | humanizeDuration }}"

#: The alert raised when a shared dependency is unreachable (its provider declares its ``HealthProbe``).
DEPENDENCY_ALERTS: dict[Dependency, AlertName] = {
    Dependency.POSTGRES: AlertName.POSTGRES_DOWN,
    Dependency.REDIS: AlertName.REDIS_DOWN,
}


def duration(seconds: float) -> str:
    """``93600`` -> ``1d2h``: a whole number of seconds as a Prometheus duration, largest units first."""
    text, rest = "", int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        text += f"{count}{unit}" if count else ""
    return text or "0s"


class DataAlerts(RuleBuilder):
    """The alerts on the data servers and their volumes."""

    def dependency_down(self, probe: HealthProbe, replicated: bool = False) -> AlertingRule:
        """One server: its exporter cannot reach it. Replicated: no server is reachable (one server down
        is a replica for the sentinels, or CloudNativePG, to replace or fail over from: not a page).
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
            AlertName.REDIS_SENTINEL_NO_QUORUM, Severity.CRITICAL, self._of(Dependency.REDIS, expr), for_=for_,
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
            AlertName.REDIS_REPLICA_UNHEALTHY, Severity.WARNING, self._of(Dependency.REDIS, expr), for_=for_,
            summary="A Redis replica is down",
            description=f"{{{{ $value }}}} replica(s) of Redis master {MASTER} in {scope.namespace} have been down or "
                        f"unreachable for {for_}: one more failure may leave no replica to promote.",
        )

    def replication_lag(self) -> AlertingRule:
        """A PostgreSQL standby replaying the primary's WAL too far behind (a failover would have to catch up)."""
        scope, lag, for_ = self.scope, self.alerts.replication_lag_seconds, self.alerts.replication_lag_for
        # cnpg_pg_replication_lag: config/manager/default-monitoring.yaml, query `pg_replication`, column `lag`:
        # seconds since the last replayed transaction, 0 on the primary and on a standby that replayed all it got.
        expr = f"max by (namespace, pod) ({scope.select('cnpg_pg_replication_lag')}) > {lag:g}"
        return self.rule(
            AlertName.POSTGRES_REPLICATION_LAG_HIGH, Severity.WARNING, self._of(Dependency.POSTGRES, expr),
            for_=for_, summary=f"PostgreSQL standby {POD} is {DURATION} behind the primary",
            description=f"PostgreSQL standby {POD} in {scope.namespace} has replayed the primary's WAL more than "
                        f"{lag:g}s late for {for_}: a failover to it would first replay that backlog, and lose "
                        "what of it the standby has not received.",
        )

    def wal_archiving(self) -> AlertingRule:
        """Backups on: the primary's WAL archiving failed more recently than it last succeeded."""
        scope, for_ = self.scope, self.alerts.wal_archiving_for
        # cnpg_pg_stat_archiver_last_failed_time, _last_archived_time: config/manager/default-monitoring.yaml,
        # query `pg_stat_archiver` (the primary only): epoch of the last failure and success, -1 for never. The
        # archiver retries a failed segment until it succeeds, so while one fails the failure stays the latest.
        failed, archived = (f"max by (namespace, pod) ({scope.select(f'cnpg_pg_stat_archiver_last_{kind}_time')})"
                            for kind in ("failed", "archived"))
        expr = f"{failed}\n> {archived}"
        return self.rule(
            AlertName.POSTGRES_WAL_ARCHIVING_FAILING, Severity.CRITICAL, self._of(Dependency.POSTGRES, expr),
            for_=for_, summary=f"PostgreSQL cannot archive its WAL ({POD})",
            description=f"WAL archiving of PostgreSQL primary {POD} in {scope.namespace} has failed since its last "
                        f"success for {for_}: the WAL piles up on the instance's volume until it fills, and no "
                        "point in time after the last archived segment can be recovered.",
        )

    def backup_age(self, schedule: str) -> AlertingRule:
        """Backups on: the newest base backup is older than the schedule's longest gap plus ``backup_grace``.

        A cluster that has never completed one is judged from when its oldest instance started, so a new
        cluster warns only once a scheduled backup would be overdue, and never before.
        """
        scope, alerts = self.scope, self.alerts
        interval = longest_interval(schedule)
        limit = interval.total_seconds() + duration_seconds(alerts.backup_grace)
        # cnpg_collector_last_available_backup_timestamp: pkg/management/postgres/webserver/metricserver/
        # pg_collector.go: set by the primary from the Cluster's status.lastSuccessfulBackup, 0 elsewhere and
        # until the first base backup completes. cnpg_pg_postmaster_start_time: default-monitoring.yaml, query
        # `pg_postmaster`, column `start_time` (every instance).
        newest = f"max by (namespace) ({scope.select('cnpg_collector_last_available_backup_timestamp')} != 0)"
        started = f"min by (namespace) ({scope.select('cnpg_pg_postmaster_start_time')})"
        expr = f"time() - (\n  {newest}\n  or\n  {started}\n) > {limit:g}"
        return self.rule(
            AlertName.POSTGRES_BACKUP_TOO_OLD, Severity.WARNING, self._of(Dependency.POSTGRES, expr),
            for_=alerts.backup_age_for, summary=f"The newest PostgreSQL base backup is {DURATION} old",
            description=f"PostgreSQL in {scope.namespace} has no base backup newer than {duration(limit)} (schedule "
                        f"`{schedule}`: up to {duration(interval.total_seconds())} between runs, plus "
                        f"{alerts.backup_grace}), or none at all since its oldest instance started that long ago: "
                        "a recovery must replay ever more WAL onto an older backup, or has none to start from.",
        )

    def pool_saturated(self) -> AlertingRule:
        """A PgBouncer pool whose clients wait for a server connection at every look: its pool is too small."""
        scope, for_ = self.scope, self.alerts.pool_saturation_for
        # cnpg_pgbouncer_pools_cl_waiting: pkg/management/pgbouncer/metricsserver/pools.go (SHOW POOLS' column
        # cl_waiting, labels database and user), exported by each Pooler pod.
        expr = f"max by (namespace, pod, database, user) ({scope.select('cnpg_pgbouncer_pools_cl_waiting')}) > 0"
        return self.rule(
            AlertName.POSTGRES_POOL_SATURATED, Severity.WARNING, self._of(Dependency.POSTGRES, expr), for_=for_,
            summary=f"PgBouncer pool {POOL} on {POD} keeps clients waiting",
            description=f"{{{{ $value }}}} client(s) of pool {POOL} on PgBouncer {POD} in {scope.namespace} have been "
                        f"waiting for a PostgreSQL connection at every evaluation for {for_}: the tier's pool is "
                        "too small for its load, or its queries hold their connections too long.",
        )

    @staticmethod
    def _of(dependency: Dependency, expr: str) -> str:
        """The ``service`` label routing and inhibition use: the alert is ``dependency``'s (Redis, PostgreSQL)."""
        return Scope.service_from(expr, "namespace", ".*", dependency.value)

    def disk(self) -> AlertingRule:
        scope, alerts = self.scope, self.alerts
        by = "by (namespace, persistentvolumeclaim)"
        expr = (f"max {by} ({scope.select('kubelet_volume_stats_used_bytes')})\n/\n"
                f"max {by} ({scope.select('kubelet_volume_stats_capacity_bytes')})\n> {alerts.disk_critical}")
        # StatefulSet claims are <template>-<statefulset>-<ordinal>: the StatefulSet is the service.
        # CloudNativePG's are <cluster>-<instance>[-wal], its Cluster named <service>-cluster.
        expr = scope.service_from(scope.service_from(expr, "persistentvolumeclaim"), "persistentvolumeclaim",
                                  "[^-]+-(.+)-[0-9]+")
        expr = scope.service_from(expr, "persistentvolumeclaim", "(.+)-cluster-[0-9]+(-wal)?")
        return self.rule(
            AlertName.DISK_SATURATION, Severity.CRITICAL, expr, for_=alerts.disk_for,
            summary=f"Volume {CLAIM} is {PERCENT} full",
            description=f"PersistentVolumeClaim {CLAIM} has been more than {percent(alerts.disk_critical)} full for "
                        f"{alerts.disk_for}; writes fail when it is full.",
        )
