"""Prometheus rules, generated from the resolved services and the stack's alert settings.

One rule group per catalog tier (every service of the tier in one regex, the tier's own
severities and latency objective) and one for the data tier (PostgreSQL, Redis, volumes, and
any container of the namespace that is not a catalog service). Nothing here names a service:
adding one to the catalog adds it to its tier's rules.

Each group starts with the recording rules of its signals (components/monitoring/signals.py):
the alerts compare those recorded series with their thresholds, and the dashboards draw the same
series, so an alert and its panel cannot measure differently. The metrics contract the rules
rely on is in docs/monitoring.md.

Every expression selects the platform namespace only, and every alert carries ``severity``,
``tier``, ``service`` and ``namespace`` labels: ``namespace`` is what the AlertmanagerConfig's
route matches on (the operator adds that matcher), ``service`` is what inhibition compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from components.labels import DATA_TIER
from components.monitoring.args import ObservabilityArgs
from components.monitoring.signals import (
    LATENCY_SIGNALS,
    PROBES,
    RATE_WINDOW,
    RecordingRule,
    Scope,
    Signal,
    data_scope,
    eq,
    record,
    tier_scope,
)
from components.names import tls_secret_name
from services.model import Dependency
from services.tiers import TIER_POLICIES, Severity, Tier
from settings.monitoring import AlertSettings, MonitoringSettings

#: cert-manager's ingress-shim names an Ingress's Certificate after its TLS Secret (``<service>-tls``).
TLS_SECRET_SUFFIX = tls_secret_name("")
SECONDS_PER_DAY = 86400


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
    CERTIFICATE_EXPIRING = "CertificateExpiring"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    ROLLOUT_STUCK = "RolloutStuck"
    REPLICAS_MISMATCH = "ReplicasMismatch"


#: The alert raised when a shared dependency is unreachable (its health metric: ``signals.PROBES``).
DEPENDENCY_ALERTS: dict[Dependency, AlertName] = {
    Dependency.POSTGRES: AlertName.POSTGRES_DOWN,
    Dependency.REDIS: AlertName.REDIS_DOWN,
}

# A Prometheus rule as written in a rule file (and in a PrometheusRule's spec.groups[].rules).
AlertingRule = TypedDict(
    "AlertingRule",
    {"alert": str, "expr": str, "for": str, "labels": dict[str, str], "annotations": dict[str, str]},
)


class RuleGroup(TypedDict):
    name: str
    #: The recording rules of the group's signals first, then its alerts (which read them).
    rules: list[RecordingRule | AlertingRule]


def _percent(ratio: float) -> str:
    """``0.025`` -> ``2.5%`` (a threshold exactly as configured, not rounded to a whole percent)."""
    return f"{ratio * 100:.4g}%"


#: Alert templates, expanded by Prometheus when an alert fires.
SERVICE, POD, CONTAINER = "{{ $labels.service }}", "{{ $labels.pod }}", "{{ $labels.container }}"
DEPLOYMENT, CLAIM, NAME = "{{ $labels.deployment }}", "{{ $labels.persistentvolumeclaim }}", "{{ $labels.name }}"
PERCENT = "{{ $value | humanizePercentage }}"


@dataclass(frozen=True)
class _Rules:
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

    # --- the signals: recording rules, read by the alerts below and by the dashboards --------

    def _per_job_rate(self, *matchers: str, metric: str = "http_requests_total") -> str:
        selector = self.scope.select(metric, self.scope.match("job"), *matchers)
        return f"sum by (namespace, job) (rate({selector}[{RATE_WINDOW}]))"

    def service_signals(self) -> list[RecordingRule]:
        """Per service: up, traffic, 5xx share and latency quantiles, the last two only above the traffic floor."""
        scope, alerts = self.scope, self.alerts
        requests, errors = self._per_job_rate(), self._per_job_rate('code=~"5.."')
        buckets = scope.select("http_request_duration_seconds_bucket", scope.match("job"))
        # Two slow requests out of three at night are noise too: latency has the error ratio's floor.
        floor = f"{self._per_job_rate(metric='http_request_duration_seconds_count')} >= " \
                f"{alerts.error_ratio_min_request_rate}"
        quantiles = [
            record(signal, scope.service_from(f"histogram_quantile({quantile}, sum by (namespace, job, le) "
                                              f"(rate({buckets}[{RATE_WINDOW}])))\nand\n{floor}", "job"))
            for quantile, signal in LATENCY_SIGNALS.items()
        ]
        up = f"max by (namespace, job) ({scope.select('up', scope.match('job'))})"
        return [
            record(Signal.UP, scope.service_from(up, "job")),
            record(Signal.REQUESTS, scope.service_from(requests, "job")),
            record(Signal.ERROR_RATIO, scope.service_from(
                f"(\n  {errors}\n  /\n  {requests}\n)\n"
                f"and\n{requests} >= {alerts.error_ratio_min_request_rate}", "job"),
            ),
            *quantiles,
        ]

    def container_signals(self) -> list[RecordingRule]:
        """Per container: CPU and working-set memory as a share of the container's limit."""
        scope, by = self.scope, "by (namespace, pod, container)"

        def of_limit(usage: str, resource: str) -> str:
            limits = scope.select("kube_pod_container_resource_limits", scope.match("container"),
                                  eq("resource", resource))
            return scope.service_from(f"{usage}\n/ on (namespace, pod, container)\nsum {by} ({limits})", "container")

        cpu = scope.select("container_cpu_usage_seconds_total", scope.match("container"))
        memory = scope.select("container_memory_working_set_bytes", scope.match("container"))
        return [record(Signal.CPU, of_limit(f"sum {by} (rate({cpu}[{RATE_WINDOW}]))", "cpu")),
                record(Signal.MEMORY, of_limit(f"max {by} ({memory})", "memory"))]

    def dependency_signal(self, dependency: Dependency) -> RecordingRule:
        """The exporter's health metric per pod; a constant service label (the exporter's Service is ours)."""
        probe = PROBES[dependency]
        expr = f"max by (namespace, pod) ({self.scope.select(probe.metric)})"
        return record(probe.signal, self.scope.service_from(expr, "namespace", ".*", dependency.value))

    # --- per service (catalog tiers) -------------------------------------------------------

    def service_down(self, severity: Severity) -> AlertingRule:
        scope, for_ = self.scope, self.alerts.service_down_for
        # No target answering, or no target at all (Deployment gone, Service selecting nothing).
        absent = [f"absent({scope.select(Signal.UP, eq('job', name), eq('service', name))})"
                  for name in scope.services]
        expr = "\nor ".join([f"{scope.signal(Signal.UP, 'job')} == 0", *absent])
        return self.rule(
            AlertName.SERVICE_DOWN, severity, expr, for_=for_,
            summary=f"{SERVICE} is down",
            description=f"No target of {SERVICE} ({scope.tier} tier) in {scope.namespace} has answered a scrape "
                        f"for {for_}: every pod is failing or none is running.",
        )

    def error_ratio(self) -> list[AlertingRule]:
        scope, alerts = self.scope, self.alerts
        return [
            self.rule(
                AlertName.ERROR_RATIO_HIGH, severity, f"{scope.signal(Signal.ERROR_RATIO, 'job')} > {threshold}",
                for_=alerts.error_ratio_for,
                summary=f"{SERVICE} fails {PERCENT} of its requests",
                description=f"More than {_percent(threshold)} of the requests to {SERVICE} have been answered with a "
                            f"5xx status for {alerts.error_ratio_for} (measured over {RATE_WINDOW}).",
            )
            for severity, threshold in ((Severity.CRITICAL, alerts.error_ratio_critical),
                                        (Severity.WARNING, alerts.error_ratio_warning))
        ]

    def latency(self, tier: Tier) -> AlertingRule:
        scope, alerts = self.scope, self.alerts
        objective = alerts.latency_p95_seconds[tier]
        return self.rule(
            AlertName.LATENCY_HIGH, Severity.WARNING, f"{scope.signal(Signal.LATENCY_P95, 'job')} > {objective}",
            for_=alerts.latency_for,
            summary=f"{SERVICE} answers slowly: p95 {{{{ $value | humanizeDuration }}}}",
            description=f"The 95th percentile latency of {SERVICE} has been above the {tier.value} tier's objective "
                        f"of {objective}s for {alerts.latency_for}.",
        )

    def certificate(self) -> AlertingRule:
        scope, days = self.scope, self.alerts.certificate_expiry_days
        # cert-manager's own namespace is `namespace` on its metrics; the Certificate's is `exported_namespace`.
        expiry = scope.select("certmanager_certificate_expiration_timestamp_seconds",
                              scope.match("name", scope.certificates), namespace_label="exported_namespace")
        expr = f"(min by (exported_namespace, name) ({expiry}) - time()) / {SECONDS_PER_DAY} < {days}"
        return self.rule(
            AlertName.CERTIFICATE_EXPIRING, Severity.WARNING,
            scope.service_from(expr, "name", f"(.*){TLS_SECRET_SUFFIX}"), for_=self.alerts.certificate_for,
            summary=f'The TLS certificate of {SERVICE} expires in {{{{ $value | printf "%.1f" }}}} days',
            description=f"Certificate {NAME} in {scope.namespace} expires within {days} days; cert-manager renews "
                        "30 days ahead, so renewal is failing.",
        )

    def rollouts(self) -> list[AlertingRule]:
        scope, alerts = self.scope, self.alerts
        deployments = scope.match("deployment", scope.deployments)
        # Extra Deployments of a service (canary, blue, green) report as the service.
        owner = f"({'|'.join(scope.services)})(?:-.+)?"

        def ksm(metric: str, *matchers: str) -> str:
            return scope.select(f"kube_deployment_{metric}", deployments, *matchers)

        progressing = ksm("status_condition", eq("condition", "Progressing"), eq("status", "false"))
        return [
            self.rule(
                AlertName.ROLLOUT_IN_PROGRESS, Severity.INFO,
                # Pods of an older ReplicaSet still run: a new version is rolling out.
                scope.service_from(f"{ksm('status_replicas')}\n> {ksm('status_replicas_updated')}", "deployment",
                                   owner),
                for_=alerts.rollout_in_progress_for,
                summary=f"{DEPLOYMENT} is rolling out a new version",
                description=f"{DEPLOYMENT} still runs pods of its previous version; this clears when the rollout "
                            "ends.",
            ),
            self.rule(
                AlertName.ROLLOUT_STUCK, Severity.INFO,
                scope.service_from(f"{progressing} == 1", "deployment", owner),
                for_=alerts.rollout_stuck_for,
                summary=f"The rollout of {DEPLOYMENT} is stuck",
                description=f"{DEPLOYMENT} exceeded its progress deadline: new pods do not become ready. The "
                            "previous version keeps serving (maxUnavailable 0).",
            ),
            self.rule(
                AlertName.REPLICAS_MISMATCH, Severity.INFO,
                scope.service_from(f"{ksm('spec_replicas')}\n!= {ksm('status_replicas_available')}", "deployment",
                                   owner),
                for_=alerts.replicas_mismatch_for,
                summary=f"{DEPLOYMENT} runs fewer available replicas than desired",
                description=f"{DEPLOYMENT} has not had its desired number of available replicas for "
                            f"{alerts.replicas_mismatch_for}: pods pending (quota, capacity) or not ready.",
            ),
        ]

    # --- per container (every scope) ------------------------------------------------------

    def saturation(self) -> list[AlertingRule]:
        scope, alerts = self.scope, self.alerts
        signals = (
            (AlertName.CPU_SATURATION, "CPU", Signal.CPU,
             ((Severity.CRITICAL, alerts.cpu_critical), (Severity.WARNING, alerts.cpu_warning))),
            (AlertName.MEMORY_SATURATION, "memory", Signal.MEMORY,
             ((Severity.CRITICAL, alerts.memory_critical), (Severity.WARNING, alerts.memory_warning))),
        )
        return [
            self.rule(
                name, severity, f"{scope.signal(signal, 'container')} > {threshold}",
                for_=alerts.saturation_for,
                summary=f"{POD} uses {PERCENT} of its {resource} limit",
                description=f"Container {CONTAINER} of pod {POD} has used more than {_percent(threshold)} of its "
                            f"{resource} limit for {alerts.saturation_for}.",
            )
            for name, resource, signal, thresholds in signals
            for severity, threshold in thresholds
        ]

    def crash_loop(self) -> AlertingRule:
        scope, for_ = self.scope, self.alerts.crash_loop_for
        waiting = scope.select("kube_pod_container_status_waiting_reason", scope.match("container"),
                               eq("reason", "CrashLoopBackOff"))
        expr = f"max by (namespace, pod, container) (max_over_time({waiting}[{RATE_WINDOW}])) >= 1"
        return self.rule(
            AlertName.POD_CRASH_LOOPING, Severity.CRITICAL, scope.service_from(expr, "container"), for_=for_,
            summary=f"{POD} is crash-looping",
            description=f"Container {CONTAINER} of pod {POD} has been in CrashLoopBackOff for {for_}.",
        )

    # --- the data tier ---------------------------------------------------------------------

    def dependency_down(self, dependency: Dependency) -> AlertingRule:
        scope, for_ = self.scope, self.alerts.dependency_down_for
        probe = PROBES[dependency]
        # No pod reaching the server, or no exporter scraped at all (absent() keeps the matchers' labels).
        expr = (f"{scope.select(probe.signal)} == 0\n"
                f"or\nabsent({scope.select(probe.signal, eq('service', dependency.value))})")
        product = probe.product
        return self.rule(
            DEPENDENCY_ALERTS[dependency], Severity.CRITICAL, expr, for_=for_,
            summary=f"{product} is unreachable",
            description=f"The {product} exporter in {scope.namespace} cannot reach {product} (`{probe.metric}` is "
                        f"0), or the exporter itself is not scraped, for {for_}. Services using {product} fail.",
        )

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
            description=f"PersistentVolumeClaim {CLAIM} has been more than {_percent(alerts.disk_critical)} full for "
                        f"{alerts.disk_for}; writes fail when it is full.",
        )


def _tier_rules(rules: _Rules, tier: Tier) -> list[RecordingRule | AlertingRule]:
    built: list[RecordingRule | AlertingRule] = [
        *rules.service_signals(), *rules.container_signals(),
        rules.service_down(TIER_POLICIES[tier].down_severity), *rules.error_ratio(), rules.latency(tier),
        *rules.saturation(), rules.crash_loop()]
    if rules.scope.certificates:
        built.append(rules.certificate())
    return built + rules.rollouts()


def _data_rules(rules: _Rules, dependencies: Sequence[Dependency]) -> list[RecordingRule | AlertingRule]:
    return [*(rules.dependency_signal(d) for d in dependencies), *rules.container_signals(),
            *(rules.dependency_down(d) for d in dependencies), rules.disk(), *rules.saturation(), rules.crash_loop()]


def rule_groups(args: ObservabilityArgs) -> dict[str, RuleGroup]:
    """Every rule group, by its key (a tier name, or ``data``); each is one PrometheusRule."""
    monitoring = args.monitoring
    groups: dict[str, list[RecordingRule | AlertingRule]] = {
        tier.value: _tier_rules(_Rules(tier_scope(args, tier), monitoring), tier)
        for tier in Tier if args.in_tier(tier)
    }
    groups[DATA_TIER] = _data_rules(_Rules(data_scope(args), monitoring), args.dependencies)
    return {key: {"name": f"codai.{key}", "rules": rules} for key, rules in groups.items()}


def rule_file(group: RuleGroup) -> dict[str, list[RuleGroup]]:
    """A group as a Prometheus rule file, the input of ``promtool check rules``."""
    return {"groups": [group]}
