"""Merge the layers (sizing table <- tier <- service) into one concrete plan per service.

Each merged value remembers the key that set it, so that a bad combination
(``replicas.min`` above ``replicas.max``, a request above its limit) is reported at the
stack key a user can change.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic.alias_generators import to_camel

from services.catalog import Catalog
from services.model import ServiceSpec
from services.tiers import TIER_POLICIES, Tier, TierPolicy
from settings.base import Problem
from settings.defaults import SIZING
from settings.quantities import Cpu, Memory
from settings.rollout import FlagValue, ImageOverride, RolloutStrategy
from settings.stack import ServiceOverrides, StackSettings
from settings.workload import WorkloadOverrides


@dataclass(frozen=True)
class Workload:
    """One Deployment of a service. Rolling has one; canary and blue-green have two."""

    #: Value of the ``codai.io/track`` pod label: stable, canary, blue or green.
    track: str
    image: str
    #: The HPA scales it and the service's main Service sends it traffic.
    live: bool
    #: Replica count of a workload the HPA does not scale (a canary, the idle colour).
    fixed_replicas: int | None = None


@dataclass(frozen=True)
class ResolvedService:
    """Everything needed to deploy one service in one stack, fully decided."""

    spec: ServiceSpec
    policy: TierPolicy
    image: str
    replicas_min: int
    replicas_max: int
    cpu_request: Cpu
    cpu_limit: Cpu
    memory_request: Memory
    memory_limit: Memory
    target_cpu_utilization: int
    target_memory_utilization: int
    env: dict[str, str] = field(default_factory=dict)
    feature_flags: dict[str, FlagValue] = field(default_factory=dict)
    strategy: RolloutStrategy = RolloutStrategy.ROLLING
    workloads: tuple[Workload, ...] = ()
    #: Percent of ingress traffic sent to the canary (canary strategy only).
    canary_weight: int | None = None

    @property
    def live(self) -> Workload:
        return next(w for w in self.workloads if w.live)

    @property
    def fixed_replicas(self) -> int:
        """Pods outside the HPA's control (canary, idle colour): they count against the quota too."""
        return sum(w.fixed_replicas or 0 for w in self.workloads if not w.live)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tier(self) -> Tier:
        return self.spec.tier


class _Layered:
    """Looks a dotted field up through the layers, last one wins, and says where it came from."""

    def __init__(self, layers: Sequence[tuple[str, WorkloadOverrides]]) -> None:
        self._layers = layers
        #: Name of the bottom layer, the sizing table: no key a stack file can change.
        self.defaults = layers[0][0]

    def get(self, dotted: str) -> tuple[Any, str]:
        found: tuple[Any, str] | None = None
        for where, layer in self._layers:
            value: Any = layer
            for part in dotted.split("."):
                value = getattr(value, part)
            if value is not None:
                found = (value, where)
        if found is None:  # the defaults table fills every field
            raise AssertionError(f"no layer sets {dotted}")
        return found

    def value(self, dotted: str) -> Any:
        return self.get(dotted)[0]

    def stack_key(self, dotted: str, instead: str = "") -> str:
        """The full key that set ``dotted``, such as ``tiers.core.replicas.max``."""
        # A clash is reported at a stack key: ``instead``'s when only the sizing table set ``dotted``.
        key = instead if instead and self.get(dotted)[1] == self.defaults else dotted
        return f"{self.get(key)[1]}.{_camel(key)}"


def _camel(dotted: str) -> str:
    """``autoscaling.target_cpu_utilization`` -> ``autoscaling.targetCpuUtilization``: the stack-file spelling."""
    return ".".join(to_camel(part) for part in dotted.split("."))


def resolve_services(settings: StackSettings, catalog: Catalog) -> tuple[list[ResolvedService], list[Problem]]:
    """Resolve every catalog service; returns the plans and the problems found (if any)."""
    problems = _unknown_services(settings, catalog)
    plans = []
    for spec in catalog.values():
        overrides = settings.services.get(spec.name, ServiceOverrides())
        values = _layers(settings, spec, overrides)
        plan = _plan(settings, spec, overrides, values)
        problems += _plan_problems(plan, values)
        plans.append(plan)
    return plans, problems


def _unknown_services(settings: StackSettings, catalog: Catalog) -> list[Problem]:
    return [(f"services.{name}", f"unknown service {name!r}{_suggest(name, catalog)}")
            for name in settings.services if name not in catalog]


def _layers(settings: StackSettings, spec: ServiceSpec, overrides: ServiceOverrides) -> _Layered:
    """The sizing table's row for the service's tier, then the stack's tier, then the service's overrides."""
    env = settings.environment
    layers: list[tuple[str, WorkloadOverrides]] = [
        (f"environment.sizing ({env.sizing.value} defaults for {spec.tier.value})", SIZING[env.sizing][spec.tier]),
    ]
    if spec.tier in settings.tiers:
        layers.append((f"tiers.{spec.tier.value}", settings.tiers[spec.tier]))
    layers.append((f"services.{spec.name}", overrides))
    return _Layered(layers)


def _plan(settings: StackSettings, spec: ServiceSpec, overrides: ServiceOverrides,
          values: _Layered) -> ResolvedService:
    replicas_min = values.value("replicas.min")
    return ResolvedService(
        spec=spec,
        policy=TIER_POLICIES[spec.tier],
        image=_image(settings, spec, overrides.image),
        replicas_min=replicas_min,
        replicas_max=values.value("replicas.max"),
        cpu_request=values.value("resources.requests.cpu"),
        cpu_limit=values.value("resources.limits.cpu"),
        memory_request=values.value("resources.requests.memory"),
        memory_limit=values.value("resources.limits.memory"),
        target_cpu_utilization=values.value("autoscaling.target_cpu_utilization"),
        target_memory_utilization=values.value("autoscaling.target_memory_utilization"),
        env=dict(overrides.env),
        feature_flags=dict(overrides.feature_flags),
        strategy=overrides.rollout.strategy,
        workloads=_workloads(settings, spec, overrides, replicas_min),
        canary_weight=overrides.rollout.canary.weight if overrides.rollout.canary else None,
    )


def _plan_problems(plan: ResolvedService, values: _Layered) -> list[Problem]:
    """A canary of an internal service, a minimum above its maximum, a request above its limit: each at the key
    that set it."""
    spec = plan.spec
    problems: list[Problem] = []
    if plan.strategy == RolloutStrategy.CANARY and not spec.public:
        problems.append((
            f"services.{spec.name}.rollout.strategy",
            f"{spec.name} is internal: a canary splits ingress traffic, so it needs a public service;"
            " use rolling or blueGreen",
        ))
    if plan.replicas_min > plan.replicas_max:
        problems.append((
            values.stack_key("replicas.min", instead="replicas.max"),
            f"{spec.name}: replicas.min {plan.replicas_min} is above replicas.max {plan.replicas_max}"
            f" (max from {values.stack_key('replicas.max')})",
        ))
    for kind in ("cpu", "memory"):
        request, limit = getattr(plan, f"{kind}_request"), getattr(plan, f"{kind}_limit")
        if request > limit:
            problems.append((
                values.stack_key(f"resources.requests.{kind}", instead=f"resources.limits.{kind}"),
                f"{spec.name}: {kind} request {request} is above its limit {limit}"
                f" (limit from {values.stack_key(f'resources.limits.{kind}')})",
            ))
    return problems


def _image(settings: StackSettings, spec: ServiceSpec, image: ImageOverride,
           default: ImageOverride | None = None) -> str:
    """``registry/repository@digest`` or ``:tag``; unset fields fall back to ``default``, then the release."""
    repository = f"{settings.environment.image_registry}/{spec.repository}"
    fallback = default or ImageOverride()
    digest = image.digest or (fallback.digest if image.tag is None else None)
    if digest:
        return f"{repository}@{digest}"
    return f"{repository}:{image.tag or fallback.tag or settings.environment.release}"


def _workloads(settings: StackSettings, spec: ServiceSpec, overrides: ServiceOverrides,
               replicas_min: int) -> tuple[Workload, ...]:
    rollout = overrides.rollout
    image = _image(settings, spec, overrides.image)
    if rollout.canary is not None:
        canary = _image(settings, spec, rollout.canary.image)
        return (Workload("stable", image, live=True),
                Workload("canary", canary, live=False, fixed_replicas=rollout.canary.replicas))
    if rollout.blue_green is not None:
        colours = rollout.blue_green
        # The idle colour keeps the floor of replicas, so switching back is instant.
        return tuple(
            Workload(colour, _image(settings, spec, getattr(colours, colour), overrides.image),
                     live=colour == colours.active,
                     fixed_replicas=None if colour == colours.active else replicas_min)
            for colour in ("blue", "green")
        )
    return (Workload("stable", image, live=True),)


def _suggest(name: str, catalog: Catalog) -> str:
    close = difflib.get_close_matches(name, list(catalog), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known services: {', '.join(catalog)}"
