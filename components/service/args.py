"""What a service is handed by the composition root: its plan, where it runs, and its neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field

from components.contracts import DependencyBinding
from components.scraping import Scraping
from settings.environment import IngressSettings, TlsSettings
from settings.resolve import ResolvedService


@dataclass(frozen=True)
class Peer:
    """Another service this one talks to (or is called by), as NetworkPolicies need it."""

    name: str
    port: int


@dataclass(frozen=True, kw_only=True)
class ServiceArgs:
    """Everything one service's objects are built from, and nothing of the stack beyond it."""

    plan: ResolvedService
    #: The stack's name, handed to the pods as ``ENVIRONMENT``.
    stack: str
    namespace: str
    #: A public service is served at ``<service>.<domain>``.
    domain: str
    ingress: IngressSettings
    tls: TlsSettings
    #: A rollout making no progress for this long has failed (a duration such as ``5m``).
    rollout_deadline: str
    scraping: Scraping
    priority_class_name: str
    #: Services allowed to call this one, and the services this one calls.
    callers: list[str] = field(default_factory=list)
    callees: list[Peer] = field(default_factory=list)
    #: Shared dependencies (PostgreSQL, Redis) made for this service.
    bindings: list[DependencyBinding] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"{self.plan.name}.{self.domain}"

    @property
    def url(self) -> str | None:
        """The public address of a public service; None for an internal one."""
        return f"https://{self.host}" if self.plan.spec.public else None
