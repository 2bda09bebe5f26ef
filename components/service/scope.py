"""Where the builders of a service's objects put them: one component, one name prefix, one label set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

from components.base import PlatformComponent
from components.labels import metadata
from components.security import ScannerException
from components.service.args import ServiceArgs
from settings.resolve import ResolvedService


@dataclass(frozen=True)
class ServiceScope:
    """The service component every object is parented to (its type is part of each URN), the prefix
    of every Pulumi resource name, the service's arguments and the labels of its objects.
    """

    component: PlatformComponent
    name: str
    args: ServiceArgs
    labels: dict[str, str]

    @property
    def plan(self) -> ResolvedService:
        return self.args.plan

    def meta(
        self,
        object_name: str,
        annotations: dict[str, str] | None = None,
        skips: Sequence[ScannerException] = (),
    ) -> ObjectMetaArgsDict:
        return metadata(object_name, self.args.namespace, self.labels, annotations, skips)

    def opts(self, **options: Any) -> pulumi.ResourceOptions:
        """A child's options: parented to the service, after its prerequisites, plus ``options``."""
        return self.component.child_opts(**options)
