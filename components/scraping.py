"""How Prometheus reaches a workload's metrics: the port name, who may scrape, the ServiceMonitor.

Services and data servers are scraped the same way; this is the one recipe for both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.networking.v1 import NetworkPolicyIngressRuleArgsDict

from components.labels import NAME, TIER_LABEL, metadata
from settings.monitoring import MonitoringSettings

#: The name of every metrics port (container, Service, ServiceMonitor endpoint).
METRICS_PORT_NAME = "metrics"


@dataclass(frozen=True)
class Scraping:
    """What a scraped workload needs to know of Prometheus (the stack's ``monitoring.*`` keys)."""

    #: Namespace of the Prometheus pods: the only namespace whose pods may reach a metrics port.
    namespace: str
    prometheus_pod_labels: Mapping[str, str]
    #: Labels the Prometheus operator selects ServiceMonitors (and PrometheusRules) by.
    selector_labels: Mapping[str, str]

    @classmethod
    def of(cls, monitoring: MonitoringSettings) -> Scraping:
        return cls(monitoring.namespace, dict(monitoring.prometheus_pod_labels), dict(monitoring.selector_labels))


@dataclass(frozen=True)
class ScrapeEndpoint:
    path: str = "/metrics"
    interval: str = "30s"
    timeout: str = "10s"


@dataclass(frozen=True)
class MonitoredWorkload:
    """The ServiceMonitor's subject: the Services it selects and the labels its object carries."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    #: Selects the Services (not the pods) whose metrics port is scraped.
    service_selector: Mapping[str, str]
    #: Pod labels copied onto every series (a service's track, to compare a canary with stable).
    pod_target_labels: Sequence[str] = field(default_factory=tuple)


def prometheus_scrape_rule(scraping: Scraping, port: int | str) -> NetworkPolicyIngressRuleArgsDict:
    """Ingress to ``port`` (a metrics port) from the Prometheus pods of the monitoring namespace only."""
    return {
        "from_": [{
            "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": scraping.namespace}},
            "pod_selector": {"match_labels": dict(scraping.prometheus_pod_labels)},
        }],
        "ports": [{"protocol": "TCP", "port": port}],
    }


def service_monitor(resource_name: str, workload: MonitoredWorkload, endpoint: ScrapeEndpoint, scraping: Scraping,
                    opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """The ServiceMonitor of one workload: its metrics port, scraped every ``endpoint.interval``."""
    spec: dict[str, object] = {
        "selector": {"matchLabels": dict(workload.service_selector)},
        "namespaceSelector": {"matchNames": [workload.namespace]},
        # job = the workload's name (for every track of a service, so alerts see canaries as the
        # service); the tier is copied onto every series for grouping.
        "jobLabel": NAME,
        "targetLabels": [TIER_LABEL],
    }
    if workload.pod_target_labels:
        spec["podTargetLabels"] = list(workload.pod_target_labels)
    spec["endpoints"] = [{"port": METRICS_PORT_NAME, "path": endpoint.path, "scheme": "http",
                          "interval": endpoint.interval, "scrapeTimeout": endpoint.timeout}]
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        metadata=metadata(workload.name, workload.namespace, {**workload.labels, **scraping.selector_labels}),
        # CustomResource specs are passed through as written: camelCase.
        spec=spec,
        opts=opts,
    )
