"""The PostgreSQL connection budget: what the tiers' Poolers may open, against what the server admits.

In transaction mode PgBouncer holds a server connection only for the length of a transaction, so
each service database gets a small fixed pool on every PgBouncer instance of its tier's Pooler
(CloudNativePG's ``Pooler``, one per tier with PostgreSQL clients) and the server's connections
become a sum known before deploying. :func:`budget` checks both sides: the server (every pool of
every PgBouncer full at once, against ``max_connections`` less the reserved slots) and each
Pooler (its services' pods at their ceilings, against its instances' ``max_client_conn``). A
stack whose numbers cannot fit is refused with a :class:`ConnectionBudgetError` naming the side,
the services with the largest shares and every figure; settings.loader reports it at the stack
key to change, before any resource exists.

Pure arithmetic, no Pulumi and no component: ``components/data/cnpg_specs.py`` writes the Poolers'
parameters from a budget that fits, and the tests' ``tests/oracles/pgbouncer.py`` the PgBouncer files
they run on real servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.model import ServiceSpec
from services.tiers import TIER_POLICIES, Tier

#: Server connections per service database and PgBouncer instance: the tier's policy
#: (``TierPolicy.database_pool_size``). The catalog's 23 PostgreSQL services (3 core at 4, 20 at 2)
#: take 52 on each PgBouncer instance of their tiers' Poolers: 104 with production's 2 instances per
#: Pooler, under 200 - 18 reserved = 182 (78 spare); 52 in staging, under 200 - 13 = 187.
POOL_SIZE_BY_TIER: Mapping[Tier, int] = {tier: policy.database_pool_size for tier, policy in TIER_POLICIES.items()}
#: What one pod's driver pool opens to PgBouncer (most drivers default to 10); client connections
#: cost PgBouncer a few kB each, not a server process.
CLIENT_CONNECTIONS_PER_POD = 10
#: Client connections one PgBouncer instance accepts. Production's largest Pooler (business: 7
#: services x 8 pods x 10 = 560) fits its 2 instances (2000), and still fits one when the other is down.
MAX_CLIENT_CONN = 1000
#: Shares named in a refusal: enough to see where the connections go.
LARGEST_SHOWN = 5

Side = Literal["server", "client"]


@dataclass(frozen=True)
class Refusal:
    """One side that does not fit: the server, or one Pooler's clients (``pooler`` names it)."""

    side: Side
    message: str
    pooler: str = ""
    #: Server: the connections needed (pools plus reserved). Client: the Pooler's client connections.
    needed: int = 0


class ConnectionBudgetError(ValueError):
    """The stack's pools cannot fit the server or a Pooler; the message names side, services and figures."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = tuple(refusals)
        super().__init__("; and ".join(refusal.message for refusal in self.refusals))


@dataclass(frozen=True)
class ServiceConnections:
    """One service's share: its database's pool on each PgBouncer of its Pooler, and what its pods open."""

    name: str
    #: Server connections PgBouncer may open to this service's database, per PgBouncer instance.
    pool_size: int
    #: Client connections each pod opens to the Pooler (its driver's pool).
    client_connections_per_pod: int
    #: Every pod the service may run at once (its HPA ceiling, plus canaries and idle colours).
    max_replicas: int
    #: The Pooler serving it (the tier's, such as ``core``); services of one Pooler share its clients.
    pooler: str = ""

    def __post_init__(self) -> None:
        for name, value in (("pool_size", self.pool_size), ("max_replicas", self.max_replicas),
                            ("client_connections_per_pod", self.client_connections_per_pod)):
            if value < 1:
                raise ValueError(f"{self.name}: {name} must be at least 1, not {value}")

    @property
    def client_connections(self) -> int:
        return self.client_connections_per_pod * self.max_replicas


@dataclass(frozen=True)
class Reserved:
    """Server connections kept out of the pools: each is something that connects without PgBouncer."""

    #: ``superuser_reserved_connections``, PostgreSQL's default: the operator's instance manager logs
    #: in as ``postgres`` over the pod's socket (probes, managed roles, Databases; at most 3 per
    #: database at once), and so can an administrator, even when the pools hold every other slot.
    superuser: int = 3
    #: CloudNativePG's metrics exporter, which (since 1.28.3) logs in as ``cnpg_metrics_exporter``,
    #: no superuser, so it takes ordinary slots: one in ``postgres`` for the default queries, one more
    #: in each database a custom query targets. 5, as the StatefulSet's exporter role's CONNECTION LIMIT.
    monitor: int = 5
    #: One-off sessions: a base backup holds one from ``pg_backup_start`` to ``pg_backup_stop``, and
    #: a Job (the bootstrap, an import from the old server, an external server's dump) one more.
    jobs: int = 2
    #: PostgreSQL instances: each standby streams over one connection (3 instances = 2 standbys).
    #: PostgreSQL 12+ gives WAL senders their own slots; counting them keeps the budget conservative.
    postgres_instances: int = 3
    #: ``auth_query`` connections per PgBouncer instance, to the auth database (``auth_dbname``):
    #: every instance of every Pooler opens its own. 0 when the lookup runs in each service's
    #: database, where it counts against that database's pool.
    auth_per_pooler: int = 1

    def slots(self, pooler_instances: int, poolers: int = 1) -> dict[str, int]:
        """Each reservation by name, as a refusal prints them."""
        figures = {"superuser": self.superuser, "monitor": self.monitor, "jobs": self.jobs,
                   "standbys": self.postgres_instances - 1,
                   "pooler auth": self.auth_per_pooler * poolers * pooler_instances}
        negative = sorted(name for name, value in figures.items() if value < 0)
        if negative or self.postgres_instances < 1:
            raise ValueError(f"reserved connections must not be negative: {negative or ['postgres_instances']}")
        return figures


@dataclass(frozen=True)
class Budget:
    """The figures of a budget that fits: what each side needs and what it has."""

    max_connections: int
    #: PgBouncer instances of each Pooler.
    pooler_instances: int
    max_client_conn: int
    reserved: Mapping[str, int]
    server_connections: int
    #: Client connections of each Pooler, by its name.
    clients: Mapping[str, int]
    services: tuple[ServiceConnections, ...] = field(default=(), repr=False)

    @property
    def server_capacity(self) -> int:
        return self.max_connections - sum(self.reserved.values())

    @property
    def spare_server_connections(self) -> int:
        return self.server_capacity - self.server_connections

    @property
    def client_capacity(self) -> int:
        """What each Pooler accepts: every one of its instances full."""
        return self.max_client_conn * self.pooler_instances

    @property
    def client_connections(self) -> int:
        """Every Pooler's clients together (each Pooler is held to :attr:`client_capacity` on its own)."""
        return sum(self.clients.values())

    @property
    def spare_client_connections(self) -> dict[str, int]:
        return {pooler: self.client_capacity - clients for pooler, clients in self.clients.items()}

    def served_by(self, pooler: str) -> list[ServiceConnections]:
        """The services of one Pooler, as ``cnpg_specs.pooler_parameters`` takes them."""
        return [service for service in self.services if service.pooler == pooler]


def budget(services: Sequence[ServiceConnections], *, max_connections: int, pooler_instances: int,
           max_client_conn: int = MAX_CLIENT_CONN, reserved: Reserved | None = None) -> Budget:
    """Both sides of the budget; raises :class:`ConnectionBudgetError` naming each side that does not fit.

    Server side: sum of pool_size x pooler_instances ≤ max_connections - reserved, since every
    PgBouncer instance of a service's Pooler may fill its pool at once. Client side, per Pooler: sum
    of client_connections_per_pod x max_replicas ≤ max_client_conn x pooler_instances.
    """
    names = [service.name for service in services]
    if not services or len(set(names)) != len(names):
        raise ValueError(f"services must be given once each, and at least one: {names}")
    if pooler_instances < 1 or max_client_conn < 1:
        raise ValueError("pooler_instances and max_client_conn must be at least 1")
    poolers = sorted({service.pooler for service in services})
    result = Budget(
        max_connections=max_connections, pooler_instances=pooler_instances, max_client_conn=max_client_conn,
        reserved=(reserved or Reserved()).slots(pooler_instances, len(poolers)),
        server_connections=sum(service.pool_size for service in services) * pooler_instances,
        clients={pooler: sum(s.client_connections for s in services if s.pooler == pooler) for pooler in poolers},
        services=tuple(services),
    )
    refusals = []
    if result.server_connections > result.server_capacity:
        refusals.append(_server_refusal(services, result))
    refusals += [_client_refusal([s for s in services if s.pooler == pooler], pooler, result)
                 for pooler in poolers if result.clients[pooler] > result.client_capacity]
    if refusals:
        raise ConnectionBudgetError(refusals)
    return result


def _server_refusal(services: Sequence[ServiceConnections], result: Budget) -> Refusal:
    pools = {service.pool_size for service in services}
    each = f"{_pgbouncers(result.pooler_instances)} per Pooler"
    if len(pools) == 1:
        need = f"{len(services)} services x pool {pools.pop()} x {each}"
    else:
        need = f"{len(services)} services: sum of pool_size {sum(s.pool_size for s in services)} x {each}"
    reserved = ", ".join(f"{name} {value}" for name, value in result.reserved.items())
    shares = {s.name: s.pool_size * result.pooler_instances for s in services}
    message = (f"server side over budget: {need} = {result.server_connections} server connections > "
               f"max_connections {result.max_connections} - {sum(result.reserved.values())} reserved ({reserved}) "
               f"= {result.server_capacity}; largest: {_largest(shares)}")
    return Refusal("server", message, needed=result.server_connections + sum(result.reserved.values()))


def _client_refusal(services: Sequence[ServiceConnections], pooler: str, result: Budget) -> Refusal:
    shares = {s.name: s.client_connections for s in services}
    where = f" in the {pooler} Pooler" if pooler else ""
    message = (f"client side over budget{where}: {len(services)} services: sum of client_connections_per_pod x "
               f"max_replicas = {result.clients[pooler]} client connections > max_client_conn "
               f"{result.max_client_conn} x {_pgbouncers(result.pooler_instances)} = {result.client_capacity}; "
               f"largest: {_largest(shares)}")
    return Refusal("client", message, pooler=pooler, needed=result.clients[pooler])


def _pgbouncers(count: int) -> str:
    return f"{count} PgBouncer{'s' if count > 1 else ''}"


def _largest(shares: Mapping[str, int]) -> str:
    ranked = sorted(shares.items(), key=lambda item: (-item[1], item[0]))[:LARGEST_SHOWN]
    more = ", ..." if len(shares) > LARGEST_SHOWN else ""
    return ", ".join(f"{name} {share}" for name, share in ranked) + more


def catalog_connections(specs: Iterable[ServiceSpec], max_replicas: Mapping[str, int], *,
                        pool_sizes: Mapping[Tier, int] = POOL_SIZE_BY_TIER,
                        client_connections_per_pod: int = CLIENT_CONNECTIONS_PER_POD) -> list[ServiceConnections]:
    """The catalog's PostgreSQL services with the tier's pool, behind the tier's Pooler, at the stack's ceilings."""
    return [ServiceConnections(spec.name, pool_sizes[spec.tier], client_connections_per_pod, max_replicas[spec.name],
                               pooler=spec.tier.value)
            for spec in specs]
