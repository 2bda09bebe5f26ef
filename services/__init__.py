"""The service catalog: which services exist and what is true of them everywhere."""

from services.catalog import CATALOG, Catalog
from services.model import EVERY_SERVICE, Dependency, ServiceSpec
from services.tiers import TIER_POLICIES, Severity, Tier, TierPolicy

__all__ = [
    "CATALOG",
    "EVERY_SERVICE",
    "TIER_POLICIES",
    "Catalog",
    "Dependency",
    "ServiceSpec",
    "Severity",
    "Tier",
    "TierPolicy",
]
