"""Object names that others refer to: a service's Deployments (alerts, rollbacks) and its TLS Secret
(Ingress, certificate alerts). One definition, so a reference cannot drift from what it names."""

from __future__ import annotations


def deployment_name(service: str, track: str) -> str:
    """The Deployment of a track: the stable track has the service's name, others a suffix (``-canary``)."""
    return service if track == "stable" else f"{service}-{track}"


def tls_secret_name(service: str) -> str:
    """The Secret cert-manager fills with a public service's certificate."""
    return f"{service}-tls"
