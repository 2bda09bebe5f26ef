"""Where Prometheus lives and how it finds our ServiceMonitors."""

from __future__ import annotations

from pydantic import Field

from settings.base import DnsLabel, SettingsModel


class MonitoringSettings(SettingsModel):
    namespace: DnsLabel = Field(default="monitoring", description="Namespace of Prometheus (and Alertmanager).")
    prometheus_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "prometheus"},
        description="Labels of the Prometheus pods; NetworkPolicies admit scrapes only from them.",
    )
    selector_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels the Prometheus operator selects ServiceMonitors and PrometheusRules by.",
    )
