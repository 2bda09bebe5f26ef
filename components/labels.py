"""Kubernetes labels, generated in one place.

Every object carries the ``app.kubernetes.io/*`` recommended labels and ``codai.io/tier``.
Selectors use only labels that never change over a workload's life (never the version),
so a rollout cannot orphan pods.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

from components.security import ScannerException, checkov_skip_annotations

PART_OF = "codai"
MANAGED_BY = "pulumi"
TIER_LABEL = "codai.io/tier"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
#: Which Deployment of a service a pod belongs to: stable, canary, blue or green. Part of every
#: Deployment's selector from the start, so adding a canary or colours never changes (and so
#: never replaces) an existing Deployment.
TRACK = "codai.io/track"

#: ``codai.io/tier`` of objects shared by the whole platform, and of the data services.
PLATFORM_TIER = "platform"
DATA_TIER = "data"


def selector(name: str) -> dict[str, str]:
    """Labels that select a workload's pods; stable for the workload's whole life."""
    return {NAME: name, INSTANCE: name, "app.kubernetes.io/part-of": PART_OF}


def track_selector(name: str, track: str) -> dict[str, str]:
    """Selects the pods of one Deployment (track) of a service."""
    return {**selector(name), TRACK: track}


def labels(name: str, component: str, tier: str, version: str | None = None) -> dict[str, str]:
    """The full label set of an object belonging to ``name``."""
    result = {
        **selector(name),
        COMPONENT: component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        TIER_LABEL: tier,
    }
    if version:
        result["app.kubernetes.io/version"] = version
    return result


def metadata(
    name: str,
    namespace: str | None,
    object_labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    skips: Sequence[ScannerException] = (),
) -> ObjectMetaArgsDict:
    """ObjectMeta with the name and namespace always set: mocks (and renders) have no provider defaults.

    ``skips`` are the security-scanner exceptions that apply to this object.
    """
    meta: ObjectMetaArgsDict = {"name": name, "labels": dict(object_labels)}
    if namespace is not None:
        meta["namespace"] = namespace
    merged = {**checkov_skip_annotations(skips), **(annotations or {})}
    if merged:
        meta["annotations"] = merged
    return meta
