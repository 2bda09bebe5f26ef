"""The whole Codai platform of one stack: foundation, shared dependencies, tiers of services, alerting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.base import PlatformComponent
from components.contracts import DependencyBinding, DependencyProvider
from components.data import Postgres, PostgresArgs, Redis, RedisArgs
from components.foundation import Foundation, FoundationArgs
from components.monitoring import Observability, ObservabilityArgs
from components.service import CodaiService, Peer, ServiceArgs
from components.tier import TIER_COMPONENTS, TierArgs, TierComponent
from services.catalog import Catalog
from services.model import Dependency
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
        settings = args.platform.settings
        environment = settings.environment
        # The data tier comes first: every service that uses it is handed a Secret and an egress rule.
        self.postgres = Postgres("postgres", PostgresArgs(settings=settings.postgres, **self._data_args(
            Dependency.POSTGRES)), self.child_opts(), depends_on=namespace)
        self.redis = Redis("redis", RedisArgs(settings=settings.redis, **self._data_args(Dependency.REDIS)),
                           self.child_opts(), depends_on=namespace)
        self.providers: list[DependencyProvider] = [self.postgres, self.redis]
        self.tiers: dict[Tier, TierComponent] = {
            tier: component(
                tier.value,
                TierArgs(services=args.platform.in_tier(tier), service_args=self._service_args),
                self.child_opts(),
                depends_on=namespace,
            )
            for tier, component in TIER_COMPONENTS.items()
        }
        self.observability = Observability(
            name, ObservabilityArgs(namespace=environment.namespace, platform=args.platform), self.child_opts(),
            depends_on=namespace,
        )
        self.register_outputs({"namespace": self.foundation.namespace.metadata.name, "urls": self.urls})

    @property
    def services(self) -> dict[str, CodaiService]:
        return {name: service for tier in self.tiers.values() for name, service in tier.services.items()}

    @property
    def urls(self) -> dict[str, str]:
        return {name: service.url for name, service in sorted(self.services.items()) if service.url}

    def _data_args(self, dependency: Dependency) -> dict[str, Any]:
        """What PostgresArgs and RedisArgs share (DataArgs): each server runs at the core tier's priority."""
        return {"namespace": self.platform.settings.environment.namespace, "platform": self.platform,
                "clients": self.catalog.using(dependency),
                "priority_class_name": self.foundation.priority_classes[Tier.CORE]}

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
