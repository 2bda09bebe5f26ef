"""Tier components: one class per tier, one shared base; what differs is the tier's policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.base import PlatformComponent
from components.service import CodaiService, ServiceArgs
from services.tiers import Tier


@dataclass(frozen=True)
class TierArgs:
    #: The arguments of each service of the tier, built by the composition root.
    services: Sequence[ServiceArgs]


class TierComponent(PlatformComponent):
    """Groups the services of one tier; subclasses only name the tier."""

    tier: Tier

    def __init__(self, name: str, args: TierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"codai:platform:{self.tier.value.capitalize()}Tier", name, opts)
        wrong = [service.plan.name for service in args.services if service.plan.tier != self.tier]
        if wrong:
            raise ValueError(f"{type(self).__name__} got services of another tier: {wrong}")
        self.services = {
            service.plan.name: CodaiService(service.plan.name, service, self.child_opts())
            for service in args.services
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
