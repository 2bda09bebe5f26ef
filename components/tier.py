"""Tier components: one class per tier, one shared base; what differs is the tier's policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi

from components.base import PlatformComponent
from components.service import CodaiService, ServiceArgs
from services.tiers import Tier
from settings.resolve import ResolvedService


@dataclass(frozen=True)
class TierArgs:
    services: Sequence[ResolvedService]
    #: Builds a service's arguments (peers, bindings, environment) from its plan.
    service_args: Callable[[ResolvedService], ServiceArgs]


class TierComponent(PlatformComponent):
    """Groups the services of one tier; subclasses only name the tier."""

    tier: Tier

    def __init__(
        self,
        name: str,
        args: TierArgs,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__(f"codai:platform:{self.tier.value.capitalize()}Tier", name, opts, depends_on)
        wrong = [s.name for s in args.services if s.tier != self.tier]
        if wrong:
            raise ValueError(f"{type(self).__name__} got services of another tier: {wrong}")
        self.services = {
            plan.name: CodaiService(plan.name, args.service_args(plan), self.child_opts(),
                                    depends_on=self._prerequisites)
            for plan in args.services
        }
        self.register_outputs({"services": sorted(self.services)})


class CoreTier(TierComponent):
    tier = Tier.CORE


class BusinessTier(TierComponent):
    tier = Tier.BUSINESS


class SupportTier(TierComponent):
    tier = Tier.SUPPORT


TIER_COMPONENTS: dict[Tier, type[TierComponent]] = {
    Tier.CORE: CoreTier,
    Tier.BUSINESS: BusinessTier,
    Tier.SUPPORT: SupportTier,
}
