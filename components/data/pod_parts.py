"""The parts the data tier's pods are assembled from: ports, containers, probes, volumes, and
the content hashes that name jobs and restart servers.

Pure values: nothing here creates a resource or knows which server it is for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvVarArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    ProbeArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)

from components.pod import hardened_container
from components.scraping import METRICS_PORT_NAME
from components.security import SECRETS_AS_ENVIRONMENT, ScannerException
from settings.data import ContainerResources
from settings.quantities import Memory


@dataclass(frozen=True)
class Port:
    name: str
    number: int


@dataclass
class Pod:
    """Containers and volumes of a pod being assembled."""

    containers: list[ContainerArgsDict] = field(default_factory=list)
    init_containers: list[ContainerArgsDict] = field(default_factory=list)
    volumes: list[VolumeArgsDict] = field(default_factory=list)


def digest(*parts: pulumi.Input[str]) -> pulumi.Output[str]:
    """A short content hash of ``parts``, for names and checksum annotations.

    The parts may hold secrets (passwords, ACL files); ten hex digits of a SHA-256 over them
    reveal nothing usable, and a secret-marked name would be redacted everywhere it shows.
    """
    return pulumi.Output.unsecret(pulumi.Output.all(*parts).apply(lambda values: plain_digest(*values)))


def plain_digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


def container(
    name: str,
    image: str,
    size: ContainerResources,
    *,
    command: list[str] | None = None,
    args: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    secret_env: list[EnvVarArgsDict] | None = None,
    env_from_secrets: Sequence[str] = (),
    ports: Sequence[Port] = (),
    mounts: Sequence[VolumeMountArgsDict] = (),
    probes: Mapping[str, ProbeArgsDict] | None = None,
) -> ContainerArgsDict:
    """A hardened container (components/pod.py) with what a server, exporter or job adds."""
    spec = hardened_container(name, image, size, mounts)
    if command:
        spec["command"] = command
    if args:
        spec["args"] = args
    variables: list[EnvVarArgsDict] = [{"name": key, "value": value} for key, value in (env or {}).items()]
    variables += secret_env or []
    if variables:
        spec["env"] = variables
    if env_from_secrets:
        spec["env_from"] = [{"secret_ref": {"name": name}} for name in env_from_secrets]
    if ports:
        spec["ports"] = [{"name": p.name, "container_port": p.number, "protocol": "TCP"} for p in ports]
    for kind, probe in (probes or {}).items():
        spec[f"{kind}_probe"] = probe  # type: ignore[literal-required]
    return spec


def exec_probe(command: list[str], period: int, failures: int, timeout: int = 5) -> ProbeArgsDict:
    return {"exec_": {"command": command}, "period_seconds": period, "timeout_seconds": timeout,
            "failure_threshold": failures}


def server_probes(check: ProbeArgsDict) -> dict[str, ProbeArgsDict]:
    """A server's three probes from one check. A first start or a crash recovery (PostgreSQL's
    initdb, Redis reading its AOF) may take minutes: the startup probe allows 10.
    """
    return {"startup": {**check, "period_seconds": 5, "failure_threshold": 120},
            "liveness": check, "readiness": {**check, "period_seconds": 5, "failure_threshold": 3}}


def http_probe(port: str, period: int, failures: int) -> ProbeArgsDict:
    return {"http_get": {"path": "/", "port": port}, "period_seconds": period, "timeout_seconds": 5,
            "failure_threshold": failures}


def exporter_probes() -> dict[str, ProbeArgsDict]:
    """The exporters serve a landing page at ``/``: cheap, and up only when the exporter is."""
    return {"liveness": http_probe(METRICS_PORT_NAME, 20, 3), "readiness": http_probe(METRICS_PORT_NAME, 10, 3)}


def secret_env_skips(pod: Pod) -> list[ScannerException]:
    """The env-from-Secret exception, for pods that have such a variable (exporters, uploads)."""
    containers = cast(list[dict[str, Any]], [*pod.containers, *pod.init_containers])
    uses = any("env_from" in c or any("value_from" in e for e in c.get("env", [])) for c in containers)
    return [SECRETS_AS_ENVIRONMENT] if uses else []


def secret_volume(name: str, secret: pulumi.Input[str], items: Mapping[str, str]) -> VolumeArgsDict:
    """A Secret as files (``key -> file name``), readable by the pod's group only."""
    return {"name": name, "secret": {"secret_name": secret, "default_mode": 0o440,
                                     "items": [{"key": key, "path": path} for key, path in items.items()]}}


def config_volume(name: str, config_map: pulumi.Input[str]) -> VolumeArgsDict:
    return {"name": name, "config_map": {"name": config_map, "default_mode": 0o444}}


def volume_claim(size: Memory, storage_class: str | None) -> PersistentVolumeClaimSpecArgsDict:
    """A volume of one node at a time; the cluster's default StorageClass unless one is named."""
    claim: PersistentVolumeClaimSpecArgsDict = {
        "access_modes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(size)}},
    }
    if storage_class:
        claim["storage_class_name"] = storage_class
    return claim
