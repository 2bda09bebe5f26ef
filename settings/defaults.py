"""Per-environment sizing in one table.

A stack picks a profile with ``environment.sizing``; the default is the
production-shaped ``highAvailability``, so a new stack (a second production region, say)
is highly available without stating anything. Stack files then override single values
per tier or per service.
"""

from __future__ import annotations

from enum import StrEnum

from services.tiers import Tier
from settings.quantities import Cpu, Memory
from settings.workload import WorkloadOverrides, sizing


class SizingProfile(StrEnum):
    MINIMAL = "minimal"
    HIGH_AVAILABILITY = "highAvailability"


SIZING: dict[SizingProfile, dict[Tier, WorkloadOverrides]] = {
    # Staging: one support pod, two core pods, small requests.
    SizingProfile.MINIMAL: {
        Tier.CORE: sizing(replicas=(2, 4), requests=("250m", "512Mi"), limits=("1", "1Gi")),
        Tier.BUSINESS: sizing(replicas=(1, 3), requests=("100m", "256Mi"), limits=("500m", "512Mi")),
        Tier.SUPPORT: sizing(replicas=(1, 2), requests=("50m", "128Mi"), limits=("250m", "256Mi")),
    },
    # Production: core spread over three zones, everything else at least two pods.
    SizingProfile.HIGH_AVAILABILITY: {
        Tier.CORE: sizing(replicas=(3, 12), requests=("500m", "1Gi"), limits=("2", "2Gi")),
        Tier.BUSINESS: sizing(replicas=(2, 8), requests=("250m", "512Mi"), limits=("1", "1Gi")),
        Tier.SUPPORT: sizing(replicas=(2, 4), requests=("100m", "256Mi"), limits=("500m", "512Mi")),
    },
}


#: Namespace ResourceQuota per profile: room for every service at its HPA ceiling,
#: plus the data tier and a rollout's surge.
QUOTA: dict[SizingProfile, dict[str, Cpu | Memory | int]] = {
    SizingProfile.MINIMAL: {
        "requests_cpu": Cpu.parse("16"),
        "requests_memory": Memory.parse("32Gi"),
        "limits_memory": Memory.parse("64Gi"),
        "requests_storage": Memory.parse("200Gi"),
        "pods": 150,
        "persistent_volume_claims": 20,
    },
    SizingProfile.HIGH_AVAILABILITY: {
        "requests_cpu": Cpu.parse("64"),
        "requests_memory": Memory.parse("128Gi"),
        "limits_memory": Memory.parse("256Gi"),
        "requests_storage": Memory.parse("1Ti"),
        "pods": 400,
        "persistent_volume_claims": 40,
    },
}
