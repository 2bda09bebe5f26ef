"""What a service is handed by the platform: its plan, its environment and its neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field

from components.contracts import DependencyBinding
from settings.environment import EnvironmentSettings
from settings.monitoring import MonitoringSettings
from settings.resolve import ResolvedService


@dataclass(frozen=True)
class Peer:
    """Another service this one talks to (or is called by), as NetworkPolicies need it."""

    name: str
    port: int


@dataclass(frozen=True)
class ServiceArgs:
    plan: ResolvedService
    stack: str
    environment: EnvironmentSettings
    monitoring: MonitoringSettings
    priority_class_name: str
    #: Services allowed to call this one, and the services this one calls.
    callers: list[str] = field(default_factory=list)
    callees: list[Peer] = field(default_factory=list)
    #: Shared dependencies (PostgreSQL, Redis) made for this service.
    bindings: list[DependencyBinding] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.environment.namespace

    @property
    def host(self) -> str:
        return f"{self.plan.name}.{self.environment.domain}"

    @property
    def url(self) -> str | None:
        """The public address of a public service; None for an internal one."""
        return f"https://{self.host}" if self.plan.spec.public else None
