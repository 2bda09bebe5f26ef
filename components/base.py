"""The one base every platform component shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


class PlatformComponent(pulumi.ComponentResource):
    """A ComponentResource whose children are parented to it and wait for its prerequisites.

    ``depends_on`` (typically the Namespace) is handed to every child explicitly: a parent's
    dependencies are not inherited by its children, and a namespaced object created
    before its namespace fails on a real ``pulumi up``.
    """

    def __init__(
        self,
        type_token: str,
        name: str,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__(type_token, name, None, opts)
        self._prerequisites = list(depends_on)

    def child_opts(self, **options: Any) -> pulumi.ResourceOptions:
        """Options for a child: parented here, after the prerequisites, plus ``options``."""
        extra = list(options.pop("depends_on", []))
        return pulumi.ResourceOptions(parent=self, depends_on=[*self._prerequisites, *extra], **options)
