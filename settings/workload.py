"""Workload sizing as layered overrides: defaults table <- tier <- service.

Every field here is optional: a layer states only what it changes. The layers are
merged by :func:`settings.resolve.resolve_services`, which also checks the merged result
(min above max, request above limit) and names the key that caused it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from settings.base import SettingsModel
from settings.quantities import Cpu, Memory

ReplicaCount = Annotated[int, Field(ge=1, le=100)]
Percent = Annotated[int, Field(ge=1, le=100)]


class Replicas(SettingsModel):
    min: ReplicaCount | None = Field(default=None, description="HPA floor; the tier default when unset.")
    max: ReplicaCount | None = Field(default=None, description="HPA ceiling; the tier default when unset.")


class Amounts(SettingsModel):
    cpu: Cpu | None = None
    memory: Memory | None = None


class Resources(SettingsModel):
    requests: Amounts = Field(default_factory=Amounts, description="What the scheduler reserves per pod.")
    limits: Amounts = Field(default_factory=Amounts, description="The most a pod may use.")


class Autoscaling(SettingsModel):
    target_cpu_utilization: Percent | None = Field(default=None, description="HPA average CPU target, % of request.")
    target_memory_utilization: Percent | None = Field(
        default=None, description="HPA average memory target, % of request."
    )


class WorkloadOverrides(SettingsModel):
    """Sizing a tier or a service may override; unset fields fall through to the layer below."""

    replicas: Replicas = Field(default_factory=Replicas)
    resources: Resources = Field(default_factory=Resources)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)


def sizing(
    replicas: tuple[int, int],
    requests: tuple[str, str],
    limits: tuple[str, str],
    cpu_target: int = 70,
    memory_target: int = 80,
) -> WorkloadOverrides:
    """A complete sizing row for the defaults table: (min, max), (cpu, memory) requests and limits."""
    return WorkloadOverrides(
        replicas=Replicas(min=replicas[0], max=replicas[1]),
        resources=Resources(
            requests=Amounts(cpu=Cpu.parse(requests[0]), memory=Memory.parse(requests[1])),
            limits=Amounts(cpu=Cpu.parse(limits[0]), memory=Memory.parse(limits[1])),
        ),
        autoscaling=Autoscaling(target_cpu_utilization=cpu_target, target_memory_utilization=memory_target),
    )
