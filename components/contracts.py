"""What shared dependencies (PostgreSQL, Redis) hand to the services that use them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict

from services.model import Dependency


@dataclass(frozen=True)
class DependencyBinding:
    """How one service reaches one dependency.

    ``secret_name`` is a Secret in the platform namespace, made for this service only,
    whose keys become environment variables of the service (``DATABASE_URL``,
    ``REDIS_URL``...). ``egress`` are NetworkPolicy egress rules (Pulumi dict form,
    snake_case keys) the service's own policy must allow to reach the dependency.
    ``ready`` are what the service's Deployments wait for on ``pulumi up``: its Secret, the
    server, and the bootstrap that creates its login, so new pods never start against a
    role or ACL user that does not exist yet.
    """

    dependency: Dependency
    secret_name: str
    egress: list[NetworkPolicyEgressRuleArgsDict] = field(default_factory=list)
    ready: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class HealthProbe:
    """How a dependency says it is reachable, declared by its provider: the metric its exporter exposes
    (1 while the exporter reaches the server, 0 when not) and the product's name for alerts and panels.
    """

    dependency: Dependency
    metric: str
    product: str

    @property
    def signal(self) -> str:
        """The series the data tier records from it, per pod (components/monitoring/signals.py's naming)."""
        return f"codai:{self.metric}:max"


class DependencyProvider(Protocol):
    """A component that serves a shared dependency to the services that declare it."""

    health: HealthProbe

    @property
    def dependency(self) -> Dependency:
        """The dependency served: its health probe's."""
        ...

    def binding_for(self, service: str) -> DependencyBinding:
        """The binding of ``service``; raises KeyError for a service that did not declare it."""
        ...
