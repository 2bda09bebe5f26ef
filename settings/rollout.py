"""How a service's new versions reach users: rolling (default), canary or blue-green."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from settings.base import ImageDigest, ImageTag, SettingsModel

_FLAG_NAME = re.compile(r"^[a-z][a-zA-Z0-9]*$")
FlagValue = bool | int | str
Colour = Literal["blue", "green"]


class RolloutStrategy(StrEnum):
    ROLLING = "rolling"
    CANARY = "canary"
    BLUE_GREEN = "blueGreen"


class ImageOverride(SettingsModel):
    tag: ImageTag | None = Field(default=None, description="Pins the tag; environment.release when unset.")
    digest: ImageDigest | None = Field(default=None, description="Pins the exact image; wins over the tag.")


class CanarySettings(SettingsModel):
    """A second Deployment running the canary image, taking ``weight`` % of public traffic."""

    image: ImageOverride = Field(description="The version under test (a tag or digest is required).")
    weight: int = Field(default=10, ge=0, le=100, description="Percent of ingress traffic sent to the canary.")
    replicas: int = Field(default=1, ge=1, le=10, description="Canary pods (not autoscaled).")

    @model_validator(mode="after")
    def _pinned(self) -> CanarySettings:
        if self.image.tag is None and self.image.digest is None:
            raise ValueError("a canary needs image.tag or image.digest: the version under test")
        return self


class BlueGreenSettings(SettingsModel):
    """Two colour Deployments; the Service sends traffic to ``active``, the other is the preview."""

    active: Colour = Field(description="Colour receiving traffic. Switching is this one change.")
    blue: ImageOverride = Field(default_factory=ImageOverride, description="Blue's image; the service's when unset.")
    green: ImageOverride = Field(default_factory=ImageOverride, description="Green's image; the service's when unset.")


class RolloutSettings(SettingsModel):
    strategy: RolloutStrategy = Field(default=RolloutStrategy.ROLLING)
    canary: CanarySettings | None = Field(default=None, description="Required with strategy canary.")
    blue_green: BlueGreenSettings | None = Field(default=None, description="Required with strategy blueGreen.")

    @model_validator(mode="after")
    def _matching_block(self) -> RolloutSettings:
        wants = {RolloutStrategy.CANARY: "canary", RolloutStrategy.BLUE_GREEN: "blueGreen"}
        given = {"canary": self.canary, "blueGreen": self.blue_green}
        needed = wants.get(self.strategy)
        if needed and given[needed] is None:
            raise ValueError(f"strategy {self.strategy.value} needs a `{needed}` block")
        stray = [key for key, value in given.items() if value is not None and key != needed]
        if stray:
            raise ValueError(f"`{stray[0]}` is set but strategy is {self.strategy.value}; remove it or change strategy")
        return self


def check_flag_names(flags: dict[str, FlagValue]) -> dict[str, FlagValue]:
    bad = [name for name in flags if not _FLAG_NAME.match(name)]
    if bad:
        raise ValueError(f"feature flag names are lowerCamelCase (e.g. newCheckout), got {bad}")
    return flags
