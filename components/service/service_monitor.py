"""How Prometheus finds a service's metrics: its ServiceMonitor over every Service of the service."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.labels import TRACK, selector
from components.scraping import MonitoredWorkload, ScrapeEndpoint, service_monitor
from components.service.scope import ServiceScope


def monitor_service(scope: ServiceScope, services: list[k8s.core.v1.Service]) -> None:
    """Every track is scraped as the service; its track is copied onto every series for comparison."""
    plan, args = scope.plan, scope.args
    workload = MonitoredWorkload(plan.name, args.namespace, scope.labels, selector(plan.name), (TRACK,))
    endpoint = ScrapeEndpoint(plan.spec.metrics_path, plan.policy.scrape_interval, plan.policy.scrape_timeout)
    service_monitor(f"{scope.name}-service-monitor", workload, endpoint, args.scraping,
                    scope.opts(depends_on=services))
