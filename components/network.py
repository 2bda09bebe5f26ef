"""NetworkPolicy rules that services and data servers share, so each rule has one definition.

(Who may scrape a metrics port is in components/scraping.py, with the ServiceMonitor.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict, NetworkPolicyPortArgsDict

#: Addresses that are not the public internet: "external" egress never means another pod, the node,
#: the cloud's metadata endpoint (169.254.169.254) or a carrier-grade NAT neighbour.
PRIVATE_RANGES = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # private (RFC 1918): pods, services, nodes
    "169.254.0.0/16",  # link-local, the metadata endpoint included
    "100.64.0.0/10",  # shared address space (RFC 6598), used by some clouds for pods
    "0.0.0.0/8", "127.0.0.0/8",  # "this network" and loopback
    "224.0.0.0/4", "240.0.0.0/4",  # multicast and reserved
]


def dns_egress_rule() -> NetworkPolicyEgressRuleArgsDict:
    """Egress to the cluster DNS only (kube-dns / CoreDNS in kube-system)."""
    return {
        "to": [{
            "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
            "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
        }],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def public_https_egress_rule() -> NetworkPolicyEgressRuleArgsDict:
    """Egress to HTTPS anywhere on the public internet, and nowhere in :data:`PRIVATE_RANGES`."""
    return {
        "to": [{"ip_block": {"cidr": "0.0.0.0/0", "except_": PRIVATE_RANGES}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }


def ip_block_egress(cidrs: Sequence[object], port: int) -> NetworkPolicyEgressRuleArgsDict:
    """Egress to ``port`` on the given address ranges (a managed server, an object store)."""
    return {"to": [{"ip_block": {"cidr": str(cidr)}} for cidr in cidrs],
            "ports": [{"protocol": "TCP", "port": port}]}


@dataclass(frozen=True)
class KubernetesApi:
    """Where pods that call the Kubernetes API reach it, as NetworkPolicies see it (after the Service's
    translation): the stack's ranges, or any address when it names none."""

    cidrs: tuple[str, ...] = ()
    ports: tuple[int, ...] = (443, 6443)

    def egress(self) -> list[NetworkPolicyEgressRuleArgsDict]:
        ports: list[NetworkPolicyPortArgsDict] = [{"protocol": "TCP", "port": port} for port in self.ports]
        return [{"to": [{"ip_block": {"cidr": cidr}} for cidr in self.cidrs or ("0.0.0.0/0",)], "ports": ports}]
