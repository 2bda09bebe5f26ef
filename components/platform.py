"""The whole Codai platform of one stack: foundation, shared dependencies, tiers of services, alerting.

:class:`CodaiPlatform` is the composition root: the only reader of the stack's plan. It hands
each component a narrow arguments object holding what that component needs and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.base import PlatformComponent
from components.contracts import DependencyBinding, DependencyProvider
from components.data import Postgres, Redis
from components.data.provider import DataArgs, ServerSettingsT
from components.foundation import Foundation, FoundationArgs
from components.monitoring import Observability
from components.monitoring.args import ObservabilityArgs
from components.network import KubernetesApi
from components.scraping import Scraping
from components.service import CodaiService, Peer, ServiceArgs
from components.tier import TIER_COMPONENTS, TierArgs, TierComponent
from services.catalog import Catalog
from services.model import Dependency
from services.tiers import Tier
from settings.loader import StackPlan
from settings.resolve import ResolvedService

#: The component serving each kind of shared dependency.
PROVIDERS: dict[Dependency, type[Postgres] | type[Redis]] = {Dependency.POSTGRES: Postgres, Dependency.REDIS: Redis}


@dataclass(frozen=True)
class PlatformArgs:
    plan: StackPlan
    catalog: Catalog


def foundation_args(plan: StackPlan) -> FoundationArgs:
    environment = plan.settings.environment
    return FoundationArgs(namespace=environment.namespace, pod_security_version=environment.kubernetes.min_version,
                          protect_stateful=environment.protect_stateful, quota=plan.quota, rbac=environment.rbac)


def observability_args(plan: StackPlan) -> ObservabilityArgs:
    """Only the dependencies that run in the cluster and have a client are watched: only they have an exporter."""
    settings = plan.settings
    watched = tuple(PROVIDERS[dependency].health for dependency, server in settings.data_servers.items()
                    if server.in_cluster and any(s.spec.uses_dependency(dependency) for s in plan.services))
    replicated = tuple(dependency for dependency, server in settings.data_servers.items()
                       if PROVIDERS[dependency].health in watched
                       and server.sizing(settings.environment.sizing).instances > 1)
    # In the cluster, backups on means WAL archived and base backups scheduled: their alerts judge this schedule.
    postgres = settings.postgres
    schedule = postgres.backup.schedule if postgres.in_cluster and postgres.backup.enabled else None
    return ObservabilityArgs(namespace=settings.environment.namespace, services=plan.services,
                             dependencies=watched, replicated=replicated, postgres_backup_schedule=schedule,
                             monitoring=settings.monitoring)


class CodaiPlatform(PlatformComponent):
    """Builds every resource of a stack from its validated plan."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("codai:platform:Platform", name, opts)
        self.plan = args.plan
        self.catalog = args.catalog
        settings = args.plan.settings
        self.scraping = Scraping.of(settings.monitoring)
        self.foundation = Foundation(name, foundation_args(args.plan), self.child_opts())
        # Everything else lives in the namespace, so it (and each of its children) waits for it.
        in_namespace = self.child_opts(depends_on=[self.foundation.namespace])
        # The data tier comes first: every service that uses it is handed a Secret and an egress rule.
        self.postgres = Postgres("postgres", self._data_args(Dependency.POSTGRES, settings.postgres), in_namespace)
        self.redis = Redis("redis", self._data_args(Dependency.REDIS, settings.redis), in_namespace)
        self.providers: list[DependencyProvider] = [self.postgres, self.redis]
        self.tiers: dict[Tier, TierComponent] = {
            tier: component(tier.value, TierArgs([self._service_args(plan) for plan in args.plan.in_tier(tier)]),
                            in_namespace)
            for tier, component in TIER_COMPONENTS.items()
        }
        self.observability = Observability(name, observability_args(args.plan), in_namespace)
        self.register_outputs({"namespace": self.foundation.namespace.metadata.name, "urls": self.urls})

    @property
    def services(self) -> dict[str, CodaiService]:
        return {name: service for tier in self.tiers.values() for name, service in tier.services.items()}

    @property
    def urls(self) -> dict[str, str]:
        return {name: service.url for name, service in sorted(self.services.items()) if service.url}

    def _data_args(self, dependency: Dependency, server: ServerSettingsT) -> DataArgs[ServerSettingsT]:
        """A data server runs at the core tier's priority: the core services cannot run without it."""
        environment = self.plan.settings.environment
        return DataArgs(settings=server, namespace=environment.namespace, clients=self.catalog.using(dependency),
                        sizing=environment.sizing, protect_stateful=environment.protect_stateful,
                        scraping=self.scraping, priority_class_name=self.foundation.priority_classes[Tier.CORE],
                        kubernetes_api=KubernetesApi(tuple(str(c) for c in environment.kubernetes.api_server_cidrs),
                                                     tuple(environment.kubernetes.api_server_ports)),
                        connection_budget=self.plan.connection_budget if dependency is Dependency.POSTGRES else None)

    def _service_args(self, plan: ResolvedService) -> ServiceArgs:
        environment = self.plan.settings.environment
        return ServiceArgs(
            plan=plan,
            stack=self.plan.stack,
            namespace=environment.namespace,
            domain=environment.domain,
            ingress=environment.ingress,
            tls=environment.tls,
            rollout_deadline=environment.rollout_deadline,
            scraping=self.scraping,
            priority_class_name=self.foundation.priority_classes[plan.tier],
            callers=self.catalog.callers_of(plan.name),
            callees=[Peer(name, self.catalog[name].port) for name in self.catalog.callees_of(plan.name)],
            bindings=self._bindings(plan),
        )

    def _bindings(self, plan: ResolvedService) -> list[DependencyBinding]:
        return [provider.binding_for(plan.name) for provider in self.providers
                if plan.spec.uses_dependency(provider.dependency)]
