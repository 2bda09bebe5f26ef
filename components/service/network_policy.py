"""Who may reach a service and whom it may reach: its NetworkPolicy (the namespace denies the rest)."""

from __future__ import annotations

import pulumi_kubernetes as k8s
from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict, NetworkPolicyIngressRuleArgsDict

from components.labels import selector
from components.network import dns_egress_rule, public_https_egress_rule
from components.scraping import METRICS_PORT_NAME, prometheus_scrape_rule
from components.service.args import ServiceArgs
from components.service.names import HTTP_PORT_NAME
from components.service.scope import ServiceScope


def network_policy(scope: ServiceScope) -> None:
    k8s.networking.v1.NetworkPolicy(
        f"{scope.name}-network-policy",
        metadata=scope.meta(scope.plan.name),
        spec={
            "pod_selector": {"match_labels": selector(scope.plan.name)},
            "policy_types": ["Ingress", "Egress"],
            "ingress": _ingress_rules(scope.args),
            "egress": _egress_rules(scope.args),
        },
        opts=scope.opts(),
    )


def _ingress_rules(args: ServiceArgs) -> list[NetworkPolicyIngressRuleArgsDict]:
    """Prometheus on the metrics port; the ingress controller (if public) and callers on the http port."""
    ingress = [prometheus_scrape_rule(args.scraping, METRICS_PORT_NAME)]
    if args.plan.spec.public:
        ingress.append({
            "from_": [{"namespace_selector": {"match_labels": {
                "kubernetes.io/metadata.name": args.ingress.controller_namespace}}}],
            "ports": [{"protocol": "TCP", "port": HTTP_PORT_NAME}],
        })
    if args.callers:
        ingress.append({
            "from_": [{"pod_selector": {"match_expressions": [
                {"key": "app.kubernetes.io/name", "operator": "In", "values": list(args.callers)}]}}],
            "ports": [{"protocol": "TCP", "port": HTTP_PORT_NAME}],
        })
    return ingress


def _egress_rules(args: ServiceArgs) -> list[NetworkPolicyEgressRuleArgsDict]:
    """DNS, each callee's port, each dependency's binding, and public HTTPS if the service declares it."""
    egress: list[NetworkPolicyEgressRuleArgsDict] = [dns_egress_rule()]
    egress += [
        {"to": [{"pod_selector": {"match_labels": selector(peer.name)}}],
         "ports": [{"protocol": "TCP", "port": peer.port}]}
        for peer in args.callees
    ]
    for binding in args.bindings:
        egress += binding.egress
    if args.plan.spec.external_egress:
        egress.append(public_https_egress_rule())
    return egress
