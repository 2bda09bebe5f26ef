"""The Codai service catalog: 29 services, each a few lines of data.

Tiers: ``core`` (codai, memorai, logai), ``business`` (the other 8 core apps)
and ``support`` (the 18 extended services). Names are Kubernetes-safe
(``AIDE`` is ``aide``). Adding a service is adding an entry here;
nothing else in the program names a service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from services.model import EVERY_SERVICE, Dependency, RedisUse, ServiceSpec
from services.tiers import Tier

PG, REDIS = Dependency.POSTGRES, Dependency.REDIS
#: What a Redis user keeps there: CACHE can be rebuilt, STATE (sessions, queues, ledgers' locks) must persist.
CACHE, STATE = RedisUse.CACHE, RedisUse.STATE
CORE, BUSINESS, SUPPORT = Tier.CORE, Tier.BUSINESS, Tier.SUPPORT

SERVICES: tuple[ServiceSpec, ...] = (
    # --- core: the platform every other service leans on -------------------------------
    ServiceSpec(name="codai", tier=CORE, description="Core platform and AIDE hub",
                port=3000, uses=(PG, REDIS), redis_use=STATE, callers=("hub", "admin", "aide", "dash")),
    ServiceSpec(name="memorai", tier=CORE, description="AI memory and database core",
                port=8080, public=False, uses=(PG, REDIS), redis_use=CACHE,
                generated_secrets=("MEMORY_ENCRYPTION_KEY",),
                callers=("codai", "aide", "fabricai", "studiai", "sociai", "analizai", "ajutai")),
    ServiceSpec(name="logai", tier=CORE, description="Identity and authentication",
                port=4000, uses=(PG, REDIS), redis_use=STATE, callers=EVERY_SERVICE,
                generated_secrets=("JWT_SIGNING_KEY", "SESSION_SECRET")),
    # --- business: revenue-bearing apps ---------------------------------------------------
    ServiceSpec(name="bancai", tier=BUSINESS, description="Financial platform",
                uses=(PG, REDIS), redis_use=STATE, external_egress=True, generated_secrets=("LEDGER_ENCRYPTION_KEY",),
                callers=("wallet", "cumparai", "x")),
    ServiceSpec(name="wallet", tier=BUSINESS, description="Programmable wallet",
                uses=(PG, REDIS), redis_use=STATE, generated_secrets=("WALLET_ENCRYPTION_KEY",),
                callers=("bancai", "cumparai", "x", "stocai")),
    ServiceSpec(name="fabricai", tier=BUSINESS, description="AI services platform",
                uses=(PG, REDIS), redis_use=CACHE, external_egress=True,
                callers=("codai", "studiai", "sociai", "publicai", "aide", "ajutai", "legalizai", "marketai")),
    ServiceSpec(name="studiai", tier=BUSINESS, description="AI education platform", port=3000,
                uses=(PG, REDIS), redis_use=CACHE),
    ServiceSpec(name="sociai", tier=BUSINESS, description="AI social platform", port=3000,
                uses=(PG, REDIS), redis_use=CACHE),
    ServiceSpec(name="cumparai", tier=BUSINESS, description="AI shopping platform", port=3000,
                uses=(PG, REDIS), redis_use=STATE),
    ServiceSpec(name="x", tier=BUSINESS, description="AI trading platform",
                uses=(PG, REDIS), redis_use=STATE, external_egress=True, callers=("stocai",)),
    ServiceSpec(name="publicai", tier=BUSINESS, description="Public AI services", port=3000,
                uses=(REDIS,), redis_use=CACHE),
    # --- support: the 18 extended services ------------------------------------------------
    ServiceSpec(name="admin", tier=SUPPORT, description="Admin panel and management", port=3000, uses=(PG,)),
    ServiceSpec(name="aide", tier=SUPPORT, description="AI development environment", port=3000,
                uses=(PG, REDIS), redis_use=CACHE),
    ServiceSpec(name="ajutai", tier=SUPPORT, description="AI support and help platform", port=3000, uses=(PG,)),
    ServiceSpec(name="analizai", tier=SUPPORT, description="AI analytics platform", uses=(PG,),
                callers=("dash", "metu")),
    ServiceSpec(name="dash", tier=SUPPORT, description="Analytics dashboard", port=3000),
    ServiceSpec(name="docs", tier=SUPPORT, description="Documentation platform", port=3000),
    ServiceSpec(name="explorer", tier=SUPPORT, description="AI blockchain explorer", port=3000, uses=(PG,)),
    ServiceSpec(name="hub", tier=SUPPORT, description="Central hub and dashboard", port=3000,
                uses=(REDIS,), redis_use=CACHE),
    ServiceSpec(name="id", tier=SUPPORT, description="Identity management system", uses=(PG,),
                callers=("logai", "admin")),
    ServiceSpec(name="jucai", tier=SUPPORT, description="AI gaming platform", port=3000,
                uses=(PG, REDIS), redis_use=STATE),
    ServiceSpec(name="kodex", tier=SUPPORT, description="Code repository and version control", uses=(PG,),
                callers=("aide", "codai")),
    ServiceSpec(name="legalizai", tier=SUPPORT, description="AI legal services platform", port=3000, uses=(PG,)),
    ServiceSpec(name="marketai", tier=SUPPORT, description="AI marketing platform", port=3000, uses=(PG,)),
    ServiceSpec(name="metu", tier=SUPPORT, description="AI metrics and analytics", uses=(PG,), public=False,
                callers=("dash", "analizai", "admin")),
    ServiceSpec(name="mod", tier=SUPPORT, description="Modding and extension platform", port=3000, uses=(PG,)),
    ServiceSpec(name="stocai", tier=SUPPORT, description="AI stock trading platform", uses=(PG, REDIS), redis_use=STATE,
                external_egress=True),
    ServiceSpec(name="templates", tier=SUPPORT, description="Shared templates and boilerplates", port=3000),
    ServiceSpec(name="tools", tier=SUPPORT, description="Development tools and utilities", port=3000),
)


class Catalog(Mapping[str, ServiceSpec]):
    """The services of the platform, by name, with their relationships resolved.

    Iteration is in name order, so output and URNs never depend on the order entries
    are written in.
    """

    def __init__(self, services: Iterable[ServiceSpec]) -> None:
        entries = list(services)
        by_name: dict[str, ServiceSpec] = {}
        for spec in entries:
            if spec.name in by_name:
                raise ValueError(f"service catalog: {spec.name!r} is listed twice")
            by_name[spec.name] = spec
        for spec in entries:
            if spec.callers != EVERY_SERVICE:
                unknown = sorted(set(spec.callers) - by_name.keys())
                if unknown:
                    raise ValueError(f"service catalog: {spec.name!r} names unknown callers {unknown}")
                if spec.name in spec.callers:
                    raise ValueError(f"service catalog: {spec.name!r} lists itself as a caller")
        self._by_name = dict(sorted(by_name.items()))
        # Both directions of "who may call whom", computed once (linear in the number of edges).
        self._callers: dict[str, list[str]] = {}
        self._callees: dict[str, list[str]] = {name: [] for name in self._by_name}
        for name, spec in self._by_name.items():
            callers = [o for o in self._by_name if o != name] if spec.callers == EVERY_SERVICE else sorted(spec.callers)
            self._callers[name] = callers
            for caller in callers:
                self._callees[caller].append(name)

    def __getitem__(self, name: str) -> ServiceSpec:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def in_tier(self, tier: Tier) -> list[ServiceSpec]:
        return [spec for spec in self._by_name.values() if spec.tier == tier]

    def callers_of(self, name: str) -> list[str]:
        """Services allowed to call ``name``, in name order."""
        return list(self._callers[name])

    def callees_of(self, name: str) -> list[str]:
        """Services that ``name`` may call: the inverse of ``callers``, in name order."""
        return list(self._callees[name])

    def using(self, dependency: Dependency) -> list[ServiceSpec]:
        return [spec for spec in self._by_name.values() if dependency in spec.uses]


CATALOG = Catalog(SERVICES)
