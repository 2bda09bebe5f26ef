"""The one base every platform component shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


class PlatformComponent(pulumi.ComponentResource):
    """A ComponentResource whose children are parented to it and wait for its prerequisites.

    The prerequisites are the ``depends_on`` of the component's own options (typically the
    Namespace), and every child is handed them explicitly: a parent's dependencies are not
    inherited by its children, and a namespaced object created before its namespace fails on a
    real ``pulumi up``.
    """

    def __init__(self, type_token: str, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token, name, None, opts)
        self._prerequisites = _resources(opts.depends_on if opts else None)

    def child_opts(self, **options: Any) -> pulumi.ResourceOptions:
        """Options for a child: parented here, after the prerequisites, plus ``options``."""
        extra = list(options.pop("depends_on", []))
        return pulumi.ResourceOptions(parent=self, depends_on=[*self._prerequisites, *extra], **options)


def _resources(depends_on: object) -> list[pulumi.Resource]:
    """``depends_on`` as a list; only resources known when the component is built can be handed down."""
    if depends_on is None:
        return []
    if isinstance(depends_on, pulumi.Resource):
        return [depends_on]
    if isinstance(depends_on, Sequence) and all(isinstance(r, pulumi.Resource) for r in depends_on):
        return list(depends_on)
    raise TypeError(f"a platform component's depends_on must be resources, not {depends_on!r}")
