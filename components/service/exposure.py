"""How a service is reached: its cluster Services, and for a public one its Ingress (and canary Ingress)."""

from __future__ import annotations

import pulumi_kubernetes as k8s
from pulumi_kubernetes.networking.v1 import IngressSpecArgsDict

from components.labels import track_selector
from components.names import tls_secret_name
from components.scraping import METRICS_PORT_NAME
from components.service.names import HTTP_PORT_NAME, side_service_role
from components.service.scope import ServiceScope


def live_service(scope: ServiceScope) -> k8s.core.v1.Service:
    """The Service with the service's name, in front of the live track."""
    plan = scope.plan
    return _service(scope, scope.name, plan.name, track_selector(plan.name, plan.live.track))


def side_services(scope: ServiceScope) -> dict[str, k8s.core.v1.Service]:
    """The non-live Deployment gets its own Service, so that it is scraped and reachable:
    `<name>-canary` for the canary Ingress, `<name>-preview` for smoke tests of the idle
    colour. The preview keeps its name when colours switch; only its selector moves.
    """
    plan = scope.plan
    return {
        role: _service(scope, f"{scope.name}-{role}", f"{plan.name}-{role}", track_selector(plan.name, workload.track))
        for workload in plan.workloads if not workload.live
        for role in [side_service_role(workload.track)]
    }


def ingress(scope: ServiceScope, service: k8s.core.v1.Service) -> None:
    args = scope.args
    spec = _ingress_spec(scope, service)
    spec["tls"] = [{"hosts": [args.host], "secret_name": tls_secret_name(args.plan.name)}]
    k8s.networking.v1.Ingress(
        f"{scope.name}-ingress",
        metadata=scope.meta(args.plan.name, annotations={
            "cert-manager.io/cluster-issuer": args.tls.cluster_issuer,
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
        }),
        spec=spec,
        opts=scope.opts(),
    )


def canary_ingress(scope: ServiceScope, canary: k8s.core.v1.Service) -> None:
    """ingress-nginx canary: same host, ``weight`` % of requests to the canary Service.

    No TLS block of its own: ingress-nginx serves the host's certificate from the main
    Ingress, and a second Certificate for the same secret would fight the first.
    """
    k8s.networking.v1.Ingress(
        f"{scope.name}-canary-ingress",
        metadata=scope.meta(f"{scope.plan.name}-canary", annotations={
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": str(scope.plan.canary_weight),
        }),
        spec=_ingress_spec(scope, canary),
        opts=scope.opts(),
    )


def _service(scope: ServiceScope, resource_name: str, object_name: str, pods: dict[str, str]) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        f"{resource_name}-service",
        metadata=scope.meta(object_name),
        spec={
            "type": "ClusterIP",
            "selector": pods,
            "ports": [
                {"name": HTTP_PORT_NAME, "port": 80, "target_port": HTTP_PORT_NAME, "protocol": "TCP",
                 "app_protocol": "http"},
                {"name": METRICS_PORT_NAME, "port": scope.plan.spec.metrics_port,
                 "target_port": METRICS_PORT_NAME, "protocol": "TCP", "app_protocol": "http"},
            ],
        },
        opts=scope.opts(),
    )


def _ingress_spec(scope: ServiceScope, backend: k8s.core.v1.Service) -> IngressSpecArgsDict:
    """The service's host, every path, to ``backend``'s http port."""
    return {
        "ingress_class_name": scope.args.ingress.class_name,
        "rules": [{
            "host": scope.args.host,
            "http": {"paths": [{
                "path": "/",
                "path_type": "Prefix",
                "backend": {"service": {"name": backend.metadata.name, "port": {"name": HTTP_PORT_NAME}}},
            }]},
        }],
    }
