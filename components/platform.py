"""The whole Codai platform of one stack: foundation, shared dependencies, tiers of services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.base import PlatformComponent
from components.contracts import DependencyBinding, DependencyProvider
from components.foundation import Foundation, FoundationArgs
from components.service import CodaiService, Peer, ServiceArgs
from components.tier import TIER_COMPONENTS, TierArgs, TierComponent
from services.catalog import Catalog
from services.tiers import Tier
from settings.loader import PlatformSettings
from settings.resolve import ResolvedService


@dataclass(frozen=True)
class PlatformArgs:
    platform: PlatformSettings
    catalog: Catalog


class CodaiPlatform(PlatformComponent):
    """Builds every resource of a stack from its validated settings."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("codai:platform:Platform", name, opts)
        self.platform = args.platform
        self.catalog = args.catalog
        self.foundation = Foundation(name, FoundationArgs(args.platform), self.child_opts())
        namespace = [self.foundation.namespace]
        self.providers: list[DependencyProvider] = []
        self.tiers: dict[Tier, TierComponent] = {
            tier: component(
                tier.value,
                TierArgs(services=args.platform.in_tier(tier), service_args=self._service_args),
                self.child_opts(),
                depends_on=namespace,
            )
            for tier, component in TIER_COMPONENTS.items()
        }
        self.register_outputs({"namespace": self.foundation.namespace.metadata.name, "urls": self.urls})

    @property
    def services(self) -> dict[str, CodaiService]:
        return {name: service for tier in self.tiers.values() for name, service in tier.services.items()}

    @property
    def urls(self) -> dict[str, str]:
        return {name: service.url for name, service in sorted(self.services.items()) if service.url}

    def _service_args(self, plan: ResolvedService) -> ServiceArgs:
        settings = self.platform.settings
        return ServiceArgs(
            plan=plan,
            stack=self.platform.stack,
            environment=settings.environment,
            monitoring=settings.monitoring,
            priority_class_name=self.foundation.priority_classes[plan.tier],
            callers=self.catalog.callers_of(plan.name),
            callees=[Peer(name, self.catalog[name].port) for name in self.catalog.callees_of(plan.name)],
            bindings=self._bindings(plan),
        )

    def _bindings(self, plan: ResolvedService) -> list[DependencyBinding]:
        return [provider.binding_for(plan.name) for provider in self.providers
                if plan.spec.uses_dependency(provider.dependency)]
