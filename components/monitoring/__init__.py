"""Alerting and dashboards of the platform: PrometheusRules, an AlertmanagerConfig, Grafana dashboards.

The builders (``rules``, ``alertmanager``, ``dashboards``) are pure functions of the stack's
settings; :class:`Observability` only turns what they return into Kubernetes objects.
See docs/monitoring.md.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

from components.base import PlatformComponent
from components.labels import PLATFORM_TIER, labels, metadata
from components.monitoring.alertmanager import alertmanager_config_spec
from components.monitoring.args import ObservabilityArgs
from components.monitoring.dashboards import dashboard_json, dashboards
from components.monitoring.rules import rule_groups

TYPE_TOKEN = "codai:monitoring:Observability"
#: ``app.kubernetes.io/name`` of the monitoring objects (never a service's name: those select pods).
MONITORING_NAME = "codai-monitoring"
PROMETHEUS_RULE = ("monitoring.coreos.com/v1", "PrometheusRule")
ALERTMANAGER_CONFIG = ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig")


def alertmanager_config_name(name: str) -> str:
    """Object name of the AlertmanagerConfig; it prefixes the receivers in Alertmanager's configuration."""
    return f"{name}-alertmanager"


class Observability(PlatformComponent):
    """One PrometheusRule per tier (and the data tier), the AlertmanagerConfig, one ConfigMap per dashboard."""

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, opts)
        monitoring = args.monitoring
        namespace = args.namespace

        def meta(object_name: str, component: str, extra: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None) -> ObjectMetaArgsDict:
            return metadata(object_name, namespace,
                            {**labels(MONITORING_NAME, component, PLATFORM_TIER), **(extra or {})}, annotations)

        # The operator's Prometheus and Alertmanager select these by the same labels as ServiceMonitors.
        selected = dict(monitoring.selector_labels)
        self.rules = {
            key: k8s.apiextensions.CustomResource(
                f"{name}-alerts-{key}",
                api_version=PROMETHEUS_RULE[0],
                kind=PROMETHEUS_RULE[1],
                metadata=meta(f"{name}-alerts-{key}", "alerts", selected),
                spec={"groups": [group]},
                opts=self.child_opts(),
            )
            for key, group in rule_groups(args).items()
        }
        self.alertmanager_config = k8s.apiextensions.CustomResource(
            f"{name}-alertmanager-config",
            api_version=ALERTMANAGER_CONFIG[0],
            kind=ALERTMANAGER_CONFIG[1],
            metadata=meta(alertmanager_config_name(name), "alerting", selected),
            spec=alertmanager_config_spec(monitoring.alertmanager),
            opts=self.child_opts(),
        )
        grafana = monitoring.grafana
        self.dashboards = {
            dashboard.slug: k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{dashboard.slug}",
                metadata=meta(f"{name}-dashboard-{dashboard.slug}", "dashboards", dict(grafana.dashboard_labels),
                              {grafana.folder_annotation: grafana.folder}),
                data={f"{dashboard.slug}.json": json.dumps(dashboard_json(dashboard, namespace), indent=1)},
                opts=self.child_opts(),
            )
            for dashboard in dashboards(args)
        }
        self.register_outputs({
            "prometheusRules": [f"{name}-alerts-{key}" for key in self.rules],
            "alertmanagerConfig": alertmanager_config_name(name),
            "dashboards": [f"{name}-dashboard-{slug}" for slug in self.dashboards],
        })
