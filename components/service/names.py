"""Names a service's objects share with whoever refers to them (Ingress backends, alerts, dashboards)."""

from __future__ import annotations

HTTP_PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"


def deployment_name(service: str, track: str) -> str:
    """The Deployment of a track: the stable track has the service's name, others a suffix (``-canary``)."""
    return service if track == "stable" else f"{service}-{track}"


def tls_secret_name(service: str) -> str:
    """The Secret cert-manager fills with a public service's certificate."""
    return f"{service}-tls"


def side_service_role(track: str) -> str:
    """The role of the Service in front of a non-live track: ``canary``, or ``preview`` for a colour."""
    return "canary" if track == "canary" else "preview"
