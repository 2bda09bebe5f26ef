"""Names inside one service: its HTTP port and the role of the Service in front of a non-live track."""

from __future__ import annotations

HTTP_PORT_NAME = "http"


def side_service_role(track: str) -> str:
    """The role of the Service in front of a non-live track: ``canary``, or ``preview`` for a colour."""
    return "canary" if track == "canary" else "preview"
