"""Validate a whole stack's configuration at once, before any resource exists.

:func:`load_settings` takes the stack's config as plain data (what ``pulumi.Config``
returns), so it is tested without Pulumi. Every problem found is collected into one
:class:`SettingsError` that names the stack file and each key path, so a user fixes
them all in one go and nothing is deployed half-way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.catalog import CATALOG, Catalog
from services.model import Dependency
from services.tiers import Tier
from settings.base import Problem
from settings.connection_budget import (
    MAX_CLIENT_CONN,
    Budget,
    ConnectionBudgetError,
    Refusal,
    Reserved,
    ServiceConnections,
    budget,
    catalog_connections,
)
from settings.data import Footprint, footprint
from settings.environment import ResolvedQuota
from settings.postgres import MAX_POOLER_INSTANCES
from settings.quantities import Cpu, Memory
from settings.resolve import ResolvedService, resolve_services
from settings.stack import CONFIG_KEYS, StackSettings

#: The Pulumi project (Pulumi.yaml's `name`): the prefix of every stack-file key.
PROJECT = "codai-platform"


class SettingsError(ValueError):
    """The stack configuration is invalid; the message lists every problem with its key."""

    def __init__(self, stack: str, problems: Sequence[Problem], project: str = PROJECT) -> None:
        self.stack_file = f"Pulumi.{stack}.yaml"
        self.problems = list(problems)
        lines = [f"{self.stack_file}: invalid configuration ({len(self.problems)} problem(s)); nothing was deployed."]
        lines += [f"  - {project}:{path}: {message}" for path, message in self.problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class StackPlan:
    """What one stack deploys: its validated settings (the stack file's keys), the resolved plan of every
    catalog service, and its quota. Only the composition root (CodaiPlatform) reads it whole."""

    stack: str
    settings: StackSettings
    services: tuple[ResolvedService, ...]
    quota: ResolvedQuota

    def in_tier(self, tier: Tier) -> list[ResolvedService]:
        return [service for service in self.services if service.tier == tier]

    def service(self, name: str) -> ResolvedService:
        return next(service for service in self.services if service.name == name)

    @property
    def data_tier(self) -> Footprint:
        """What the in-cluster PostgreSQL and Redis (servers, exporters, volumes) take from the quota."""
        settings = self.settings
        return footprint(settings.postgres, settings.redis, settings.environment.sizing,
                         poolers=len(self.pooled_tiers))

    @property
    def postgres_users(self) -> list[ResolvedService]:
        return [service for service in self.services if service.spec.uses_dependency(Dependency.POSTGRES)]

    @property
    def pooled_tiers(self) -> list[Tier]:
        """The tiers with a PostgreSQL client: each gets its own Pooler (one pool size per Pooler)."""
        return sorted({service.tier for service in self.postgres_users})

    @property
    def postgres_clients(self) -> list[ServiceConnections]:
        """Each PostgreSQL client's share of the connection budget: its tier's pool and Pooler, and every pod
        it may run at once (replicas.max plus canaries and idle colours: each pod may connect)."""
        users = self.postgres_users
        ceilings = {service.name: service.replicas_max + service.fixed_replicas for service in users}
        return catalog_connections([service.spec for service in users], ceilings)

    @property
    def connection_budget(self) -> Budget | None:
        """The in-cluster server's connection budget, one Pooler per tier (``Budget.served_by(tier.value)``);
        None for an external server or without PostgreSQL clients. A budget that does not fit raises
        :class:`ConnectionBudgetError`, which :func:`load_settings` has reported already."""
        postgres, clients = self.settings.postgres, self.postgres_clients
        if not postgres.in_cluster or not clients:
            return None
        sizing = postgres.sizing(self.settings.environment.sizing)
        return budget(clients, max_connections=postgres.max_connections, pooler_instances=sizing.pooler_instances,
                      reserved=Reserved(postgres_instances=sizing.instances))

    def demand(self, *, at_max: bool = True) -> Demand:
        """Requests, memory limits and pods of every service at its HPA ceiling (plus canaries and idle
        colours), or at its floor, plus the data tier."""
        data = self.data_tier
        pods = {s.name: (s.replicas_max if at_max else s.replicas_min) + s.fixed_replicas for s in self.services}
        return Demand(
            cpu=Cpu(data.cpu_requests.millis + sum(s.cpu_request.millis * pods[s.name] for s in self.services)),
            memory=Memory(data.memory_requests.bytes
                          + sum(s.memory_request.bytes * pods[s.name] for s in self.services)),
            memory_limits=Memory(data.memory_limits.bytes
                                 + sum(s.memory_limit.bytes * pods[s.name] for s in self.services)),
            pods=data.pods + sum(pods.values()),
        )


@dataclass(frozen=True)
class Demand:
    """What a stack asks of its namespace quota at one scale."""

    cpu: Cpu
    memory: Memory
    memory_limits: Memory
    pods: int


def load_settings(stack: str, config: Mapping[str, Any], catalog: Catalog = CATALOG) -> StackPlan:
    """Validate ``config`` (top-level key -> value, without the project prefix) for ``stack``."""
    problems: list[Problem] = [
        (key, f"unknown configuration key; known keys: {', '.join(CONFIG_KEYS)}")
        for key in sorted(config)
        if key not in CONFIG_KEYS
    ]
    known = {key: value for key, value in config.items() if key in CONFIG_KEYS}
    try:
        settings = StackSettings.model_validate(known)
    except ValidationError as error:
        raise SettingsError(stack, problems + _pydantic_problems(error)) from None

    services, resolve_problems = resolve_services(settings, catalog)
    problems += resolve_problems
    quota = settings.environment.quota.resolved(settings.environment.sizing)
    plan = StackPlan(stack=stack, settings=settings, services=tuple(services), quota=quota)
    if not problems:
        problems += _cross_key_problems(settings) + _capacity_problems(plan)
    if not problems:
        problems += _budget_problems(plan)
    if problems:
        raise SettingsError(stack, problems)
    return plan


def _cross_key_problems(settings: StackSettings) -> list[Problem]:
    """Rules that span top-level keys (a model validator could not name the key)."""
    problems: list[Problem] = []
    if settings.monitoring.namespace == settings.environment.namespace:
        problems.append(("monitoring.namespace", "must differ from environment.namespace: Prometheus scrapes "
                         "the platform from its own namespace"))
    profile = settings.environment.sizing
    problems += settings.postgres.problems(profile) + settings.redis.problems(profile)
    return problems


#: Pods of Jobs that may run beside everything else: the PostgreSQL and Redis bootstraps and a backup.
JOB_PODS = 3


def _capacity_problems(plan: StackPlan) -> list[Problem]:
    """A quota that cannot hold every service at its HPA ceiling, plus the data tier, would silently cap
    autoscaling or leave a database volume pending."""
    demand, data, quota = plan.demand(), plan.data_tier, plan.quota
    checks: list[tuple[str, Cpu | Memory | int, Cpu | Memory | int]] = [
        ("requestsCpu", demand.cpu, quota.requests_cpu),
        ("requestsMemory", demand.memory, quota.requests_memory),
        ("limitsMemory", demand.memory_limits, quota.limits_memory),
        ("pods", demand.pods + JOB_PODS, quota.pods),
        ("requestsStorage", data.storage_requests, quota.requests_storage),
        ("persistentVolumeClaims", data.persistent_volume_claims, quota.persistent_volume_claims),
    ]
    return [
        (
            f"environment.quota.{key}",
            f"{limit} cannot hold every service at its replicas.max plus the data tier ({needed} needed);"
            " raise the quota or lower the tier ceilings",
        )
        for key, needed, limit in checks
        if _amount(needed) > _amount(limit)
    ]


def _budget_problems(plan: StackPlan) -> list[Problem]:
    """Pools the in-cluster server or a tier's Pooler cannot hold (docs/data.md), at the key that changes them."""
    try:
        _ = plan.connection_budget  # fits, or raises naming each side that does not
    except ConnectionBudgetError as error:
        return [_budget_problem(refusal, plan) for refusal in error.refusals]
    return []


def _budget_problem(refusal: Refusal, plan: StackPlan) -> Problem:
    instances = plan.settings.postgres.sizing(plan.settings.environment.sizing).pooler_instances
    if refusal.side == "server":
        return ("postgres.maxConnections", f"{refusal.message}; raise postgres.maxConnections to at least "
                f"{refusal.needed}, or run fewer PgBouncers per Pooler (postgres.pooler.instances, {instances}): "
                "each holds every pool of its tier")
    enough = -(-refusal.needed // MAX_CLIENT_CONN)
    fewer_clients = f"lower tiers.{refusal.pooler}.replicas.max or the replicas.max of its largest services"
    if enough > MAX_POOLER_INSTANCES:
        return ("postgres.pooler.instances", f"{refusal.message}; {enough} PgBouncers per Pooler would be needed, "
                f"more than postgres.pooler.instances allows (at most {MAX_POOLER_INSTANCES}): {fewer_clients}")
    return ("postgres.pooler.instances", f"{refusal.message}; raise postgres.pooler.instances to at least {enough} "
            f"(each also holds the tier's pools on the server), or {fewer_clients}")


def _amount(quantity: Cpu | Memory | int) -> int:
    if isinstance(quantity, Cpu):
        return quantity.millis
    return quantity.bytes if isinstance(quantity, Memory) else quantity


def _pydantic_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        path = ""
        for part in item["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part == "[key]":
                continue
            else:
                path += f".{part}" if path else str(part)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and place)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif "input" in item and not isinstance(item["input"], (dict, list)) and (
                item["type"] != "value_error" or repr(item["input"]) not in message):
            # pydantic's own messages never quote the value ("greater than 0" for a 0 included)
            message += f" (got {item['input']!r})"
        problems.append((path, message))
    return problems
