"""Monitoring settings: where Prometheus lives, alert thresholds, alert routing and dashboards.

Every value has a production-shaped default, so a stack file states only what differs
(``codai-platform:monitoring``). Receiver credentials are never values here: a stack names
the Kubernetes Secret (and key) that holds each one, and the Prometheus operator reads it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, HttpUrl, field_validator, model_validator
from pydantic.alias_generators import to_camel

from services.tiers import Tier
from settings.base import (
    DnsLabel,
    Duration,
    LabelKey,
    LabelSelector,
    PositiveDuration,
    SecretKey,
    SettingsModel,
    duration_seconds,
)

#: A share of a whole: an error ratio or a fraction of a resource limit (0.9 is 90 %).
Ratio = Annotated[float, Field(gt=0, le=1)]

#: p95 latency objective per tier, in seconds: the LatencyHigh warning fires above it.
DEFAULT_LATENCY_P95_SECONDS: dict[Tier, float] = {Tier.CORE: 0.5, Tier.BUSINESS: 1.0, Tier.SUPPORT: 2.0}


class AlertSettings(SettingsModel):
    """Thresholds and ``for`` durations of the generated alert rules (docs/monitoring.md lists the alerts)."""

    error_ratio_critical: Ratio = Field(default=0.05, description="5xx share of requests that pages (critical).")
    error_ratio_warning: Ratio = Field(default=0.02, description="5xx share of requests that warns.")
    error_ratio_min_request_rate: float = Field(
        default=0.1, ge=0,
        description="Requests per second below which a service's error ratio is not judged (a few failures of "
                    "a handful of requests are noise, not an outage).",
    )
    error_ratio_for: Duration = "5m"
    cpu_critical: Ratio = Field(default=0.9, description="CPU use as a share of the container's limit: critical.")
    cpu_warning: Ratio = Field(default=0.8, description="CPU use as a share of the container's limit: warning.")
    memory_critical: Ratio = Field(default=0.9, description="Working-set memory as a share of the limit: critical.")
    memory_warning: Ratio = Field(default=0.8, description="Working-set memory as a share of the limit: warning.")
    saturation_for: Duration = Field(default="15m", description="`for` of the CPU and memory alerts.")
    disk_critical: Ratio = Field(default=0.9, description="Used share of a PersistentVolumeClaim: critical.")
    disk_for: Duration = "10m"
    latency_p95_seconds: dict[Tier, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: dict(DEFAULT_LATENCY_P95_SECONDS),
        description="p95 latency objective per tier; a tier left out keeps its default.",
    )
    latency_for: Duration = "10m"
    certificate_expiry_days: int = Field(
        default=14, ge=1, le=60,
        description="Warn when a TLS certificate expires within this many days (cert-manager renews at 30).",
    )
    certificate_for: Duration = "15m"
    service_down_for: Duration = Field(default="2m", description="`for` of ServiceDown, in every tier.")
    dependency_down_for: Duration = Field(default="1m", description="`for` of PostgresDown and RedisDown.")
    crash_loop_for: Duration = "5m"
    rollout_in_progress_for: Duration = "1m"
    rollout_stuck_for: Duration = "5m"
    replicas_mismatch_for: Duration = "15m"
    replication_lag_seconds: float = Field(
        default=30.0, gt=0, description="How far (seconds of WAL replay) a PostgreSQL standby may lag behind the "
        "primary before PostgresReplicationLagHigh warns; a failover to it would lose about that much.",
    )
    replication_lag_for: Duration = Field(default="5m", description="`for` of PostgresReplicationLagHigh: a bulk "
                                          "write or a long vacuum may hold a standby back for a while.")
    wal_archiving_for: Duration = Field(
        default="10m", description="`for` of PostgresWalArchivingFailing: archiving has failed since its last "
        "success this long (the archiver retries every minute, so an object store's short hiccup does not page).",
    )
    backup_grace: PositiveDuration = Field(
        default="2h", description="PostgresBackupTooOld warns when the newest base backup is older than the longest "
        "interval between two runs of `postgres.backup.schedule` plus this: the time a backup may take over the "
        "previous one's.",
    )
    backup_age_for: Duration = Field(default="15m", description="`for` of PostgresBackupTooOld: rides over a failover, "
                                     "when the new primary has not yet reported the last backup.")
    pool_saturation_for: Duration = Field(
        default="5m", description="`for` of PostgresPoolSaturated: clients waiting for a server connection of a "
        "PgBouncer pool at every evaluation this long (a burst queues for an instant, a pool too small always).",
    )

    @field_validator("latency_p95_seconds")
    @classmethod
    def _every_tier(cls, value: dict[Tier, float]) -> dict[Tier, float]:
        return {**DEFAULT_LATENCY_P95_SECONDS, **value}

    @model_validator(mode="after")
    def _critical_above_warning(self) -> AlertSettings:
        for signal in ("error_ratio", "cpu", "memory"):
            critical, warning = getattr(self, f"{signal}_critical"), getattr(self, f"{signal}_warning")
            if critical <= warning:
                raise ValueError(f"{to_camel(signal)}Critical ({critical}) must be above {to_camel(signal)}Warning "
                                 f"({warning}): otherwise the warning could never come first")
        return self


class SecretKeyRef(SettingsModel):
    """A key of a Secret in the platform namespace (where the AlertmanagerConfig is)."""

    name: DnsLabel
    key: SecretKey


def _label_names(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    bad = [name for name in value if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name)]
    if bad or len(set(value)) != len(value) or not value:
        raise ValueError(f"groupBy must be a non-empty list of distinct label names ([a-zA-Z_][a-zA-Z0-9_]*), "
                         f"got {value}")
    return value


#: Labels that make one notification group (Alertmanager ``group_by``).
GroupBy = Annotated[list[str], AfterValidator(_label_names)]


class ReceiverTiming(SettingsModel):
    group_by: GroupBy | None = Field(default=None, description="Grouping of this receiver; the route's when unset.")
    group_wait: Duration = Field(description="Wait before the first notification of a new group.")
    group_interval: PositiveDuration = Field(description="Wait before notifying about alerts added to a group.")
    repeat_interval: PositiveDuration = Field(description="Wait before repeating a notification still firing.")

    @model_validator(mode="after")
    def _repeat_after_group(self) -> ReceiverTiming:
        if duration_seconds(self.repeat_interval) < duration_seconds(self.group_interval):
            raise ValueError(f"repeatInterval {self.repeat_interval} is shorter than groupInterval "
                             f"{self.group_interval}; Alertmanager would repeat at the group interval anyway")
        return self


class PagerDutyReceiver(ReceiverTiming):
    """Critical alerts: a PagerDuty Events API v2 integration (pages the on-call engineer)."""

    routing_key: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="alertmanager-pagerduty", key="routingKey"),
        description="Secret key holding the integration's routing key.",
    )
    group_wait: Duration = "10s"
    group_interval: PositiveDuration = "5m"
    repeat_interval: PositiveDuration = "1h"


class SlackReceiver(ReceiverTiming):
    """Warnings: a Slack incoming webhook, to the team channel."""

    api_url: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="alertmanager-slack", key="webhookUrl"),
        description="Secret key holding the incoming-webhook URL.",
    )
    channel: str = Field(default="#codai-alerts", pattern=r"^[#@][-_a-z0-9.]+$")
    group_wait: Duration = "30s"
    group_interval: PositiveDuration = "5m"
    repeat_interval: PositiveDuration = "4h"


class DigestReceiver(ReceiverTiming):
    """Info: a webhook that collects a low-noise digest (a reporting service, a mail relay)."""

    url: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="alertmanager-digest", key="url"),
        description="Secret key holding the webhook URL.",
    )
    group_by: GroupBy | None = Field(
        default_factory=lambda: ["namespace"],
        description="One batch for the whole platform per groupInterval: a digest, not a stream.",
    )
    group_wait: Duration = "5m"
    group_interval: PositiveDuration = "1h"
    repeat_interval: PositiveDuration = "24h"


class AlertmanagerSettings(SettingsModel):
    """Routing by severity: critical to PagerDuty, warning to Slack, info to the digest."""

    group_by: GroupBy = Field(
        default_factory=lambda: ["alertname", "service"],
        description="One notification per alert name and service.",
    )
    pagerduty: PagerDutyReceiver = Field(default_factory=PagerDutyReceiver)
    slack: SlackReceiver = Field(default_factory=SlackReceiver)
    digest: DigestReceiver = Field(default_factory=DigestReceiver)


class GrafanaSettings(SettingsModel):
    dashboard_labels: LabelSelector = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="Labels the Grafana dashboard sidecar watches ConfigMaps for (kube-prometheus-stack default).",
    )
    folder_annotation: LabelKey = Field(
        default="grafana_folder", description="Annotation the sidecar reads the dashboard folder from."
    )
    folder: str = Field(default="Codai", min_length=1)


class MonitoringSettings(SettingsModel):
    namespace: DnsLabel = Field(default="monitoring", description="Namespace of Prometheus (and Alertmanager).")
    prometheus_pod_labels: LabelSelector = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "prometheus"},
        description="Labels of the Prometheus pods; NetworkPolicies admit scrapes only from them.",
    )
    selector_labels: LabelSelector = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels the Prometheus operator selects ServiceMonitors and PrometheusRules by.",
    )
    runbook_base_url: HttpUrl = Field(
        default=HttpUrl("https://github.com/codai/codai-platform/blob/main/docs/runbooks"),
        description="Every alert's runbook_url is <this>/<AlertName>.md.",
    )
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)

    def runbook_url(self, alert: str) -> str:
        return f"{str(self.runbook_base_url).rstrip('/')}/{alert}.md"
