"""How Prometheus finds a service's metrics: its ServiceMonitor over every Service of the service."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.labels import TRACK, metadata, selector
from components.service.names import METRICS_PORT_NAME
from components.service.scope import ServiceScope


def service_monitor(scope: ServiceScope, services: list[k8s.core.v1.Service]) -> None:
    plan, args = scope.plan, scope.args
    monitor_labels = {**scope.labels, **args.monitoring.selector_labels}
    k8s.apiextensions.CustomResource(
        f"{scope.name}-service-monitor",
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        metadata=metadata(plan.name, args.namespace, monitor_labels),
        # CustomResource specs are passed through as written: camelCase.
        spec={
            "selector": {"matchLabels": selector(plan.name)},
            "namespaceSelector": {"matchNames": [args.namespace]},
            # job = the service's name for every track, so alerts see canaries as the service;
            # the tier and the track are copied onto every series for grouping and comparison.
            "jobLabel": "app.kubernetes.io/name",
            "targetLabels": ["codai.io/tier"],
            "podTargetLabels": [TRACK],
            "endpoints": [{
                "port": METRICS_PORT_NAME,
                "path": plan.spec.metrics_path,
                "scheme": "http",
                "interval": plan.policy.scrape_interval,
                "scrapeTimeout": plan.policy.scrape_timeout,
            }],
        },
        opts=scope.opts(depends_on=services),
    )
