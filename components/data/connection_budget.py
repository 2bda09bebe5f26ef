"""PgBouncer in front of PostgreSQL: the connection budget, ``pgbouncer.ini`` and the pooler's auth SQL.

Services connecting directly could open 23 x 40 connections against ``max_connections`` 200. In
transaction mode PgBouncer holds a server connection only for the length of a transaction, so
each service database gets a small fixed pool per pooler instance and the server's connections
become a sum that is known before deploying. :func:`budget` computes that sum for both sides
(server connections against ``max_connections``, client connections against the poolers'
``max_client_conn``) and refuses a stack whose numbers cannot fit, naming the side, the services
with the largest shares and every figure. Pure text and arithmetic (no Pulumi): the tests run the
generated ``pgbouncer.ini`` and SQL on real servers, as CloudNativePG's Pooler will in the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from components.data import sql
from services.model import ServiceSpec
from services.tiers import TIER_POLICIES, Tier

#: The login PgBouncer runs ``auth_query`` as: the name CloudNativePG's Pooler uses.
AUTH_ROLE = "cnpg_pooler_pgbouncer"
#: Server connections per service database and pooler instance: the tier's policy
#: (``TierPolicy.database_pool_size``). With the catalog's 23 PostgreSQL services (3 core, 4 each;
#: the others 2) and 3 poolers that is (3 x 4 + 20 x 2) x 3 = 156 connections, under 200 - 15
#: reserved = 185, leaving 29 for new services or a bigger pool where one needs it.
POOL_SIZE_BY_TIER: Mapping[Tier, int] = {tier: policy.database_pool_size for tier, policy in TIER_POLICIES.items()}
#: What one pod's driver pool opens to PgBouncer (most drivers default to 10); client connections
#: cost PgBouncer a few kB each, not a server process.
CLIENT_CONNECTIONS_PER_POD = 10
#: Client connections one pooler accepts: production's 153 pods at their ceiling x 10 = 1530 fit
#: three poolers (3000) and still fit two when one is down (2000).
MAX_CLIENT_CONN = 1000
#: Shares named in a refusal: enough to see where the connections go.
LARGEST_SHOWN = 5


class ConnectionBudgetError(ValueError):
    """The stack's pools cannot fit the server or the poolers; the message names side, services and figures."""


@dataclass(frozen=True)
class ServiceConnections:
    """One service's share: its database's pool on each pooler, and what its pods open to the poolers."""

    name: str
    #: Server connections PgBouncer may open to this service's database, per pooler (transaction mode).
    pool_size: int
    #: Client connections each pod opens to the poolers (its driver's pool).
    client_connections_per_pod: int
    #: The service's HPA ceiling: every pod at once is the worst case the poolers must accept.
    max_replicas: int

    def __post_init__(self) -> None:
        for field, value in (("pool_size", self.pool_size), ("max_replicas", self.max_replicas),
                             ("client_connections_per_pod", self.client_connections_per_pod)):
            if value < 1:
                raise ValueError(f"{self.name}: {field} must be at least 1, not {value}")

    @property
    def database(self) -> str:
        """Database (and role) name, as the bootstrap makes it."""
        return sql.identifier(self.name)

    @property
    def client_connections(self) -> int:
        return self.client_connections_per_pod * self.max_replicas


@dataclass(frozen=True)
class Reserved:
    """Server connections kept out of the pools: each is something that connects without PgBouncer."""

    #: ``superuser_reserved_connections``: PostgreSQL's default, kept so an administrator can always log in.
    superuser: int = 3
    #: The exporter's role (``sql.MONITOR_ROLE``), whose CONNECTION LIMIT is 5.
    monitor: int = 5
    #: The bootstrap Job and the backup CronJob, one connection each (pg_dump dumps one database at a time).
    jobs: int = 2
    #: PostgreSQL instances: each standby streams over one connection (CloudNativePG's 3 = 2 standbys).
    #: PostgreSQL 12+ gives WAL senders their own slots; counting them keeps the budget conservative.
    postgres_instances: int = 3
    #: ``auth_query`` connections per pooler, to the auth database (``auth_dbname``). 0 when the
    #: lookup runs in each service's database, where it counts against that database's pool.
    auth_per_pooler: int = 1

    def slots(self, pooler_instances: int) -> dict[str, int]:
        """Each reservation by name, as a refusal prints them."""
        figures = {"superuser": self.superuser, "monitor": self.monitor, "jobs": self.jobs,
                   "standbys": self.postgres_instances - 1, "pooler auth": self.auth_per_pooler * pooler_instances}
        negative = sorted(name for name, value in figures.items() if value < 0)
        if negative or self.postgres_instances < 1:
            raise ValueError(f"reserved connections must not be negative: {negative or ['postgres_instances']}")
        return figures


@dataclass(frozen=True)
class Budget:
    """The figures of a budget that fits: what each side needs and what it has."""

    max_connections: int
    pooler_instances: int
    max_client_conn: int
    reserved: Mapping[str, int]
    server_connections: int
    client_connections: int

    @property
    def server_capacity(self) -> int:
        return self.max_connections - sum(self.reserved.values())

    @property
    def client_capacity(self) -> int:
        return self.max_client_conn * self.pooler_instances

    @property
    def spare_server_connections(self) -> int:
        return self.server_capacity - self.server_connections


def budget(services: Sequence[ServiceConnections], *, max_connections: int, pooler_instances: int,
           max_client_conn: int = MAX_CLIENT_CONN, reserved: Reserved | None = None) -> Budget:
    """Both sides of the budget; raises :class:`ConnectionBudgetError` naming each side that does not fit.

    Server side: sum of pool_size x pooler_instances ≤ max_connections - reserved, since every pooler
    may fill every pool at once. Client side: sum of client_connections_per_pod x max_replicas ≤
    max_client_conn x pooler_instances, every service at its ceiling.
    """
    names = [service.name for service in services]
    if not services or len(set(names)) != len(names):
        raise ValueError(f"services must be given once each, and at least one: {names}")
    if pooler_instances < 1 or max_client_conn < 1:
        raise ValueError("pooler_instances and max_client_conn must be at least 1")
    result = Budget(
        max_connections=max_connections, pooler_instances=pooler_instances, max_client_conn=max_client_conn,
        reserved=(reserved or Reserved()).slots(pooler_instances),
        server_connections=sum(service.pool_size for service in services) * pooler_instances,
        client_connections=sum(service.client_connections for service in services),
    )
    problems = []
    if result.server_connections > result.server_capacity:
        problems.append(_server_refusal(services, result))
    if result.client_connections > result.client_capacity:
        problems.append(_client_refusal(services, result))
    if problems:
        raise ConnectionBudgetError("; and ".join(problems))
    return result


def _server_refusal(services: Sequence[ServiceConnections], result: Budget) -> str:
    pools = {service.pool_size for service in services}
    poolers = f"{result.pooler_instances} pooler{'s' if result.pooler_instances > 1 else ''}"
    if len(pools) == 1:
        need = f"{len(services)} services x pool {pools.pop()} x {poolers}"
    else:
        need = f"{len(services)} services: sum of pool_size {sum(s.pool_size for s in services)} x {poolers}"
    reserved = ", ".join(f"{name} {value}" for name, value in result.reserved.items())
    shares = {s.name: s.pool_size * result.pooler_instances for s in services}
    return (f"server side over budget: {need} = {result.server_connections} server connections > "
            f"max_connections {result.max_connections} - {sum(result.reserved.values())} reserved ({reserved}) "
            f"= {result.server_capacity}; largest: {_largest(shares)}")


def _client_refusal(services: Sequence[ServiceConnections], result: Budget) -> str:
    shares = {s.name: s.client_connections for s in services}
    return (f"client side over budget: {len(services)} services: sum of client_connections_per_pod x max_replicas = "
            f"{result.client_connections} client connections > max_client_conn {result.max_client_conn} x "
            f"{result.pooler_instances} poolers = {result.client_capacity}; largest: {_largest(shares)}")


def _largest(shares: Mapping[str, int]) -> str:
    ranked = sorted(shares.items(), key=lambda item: (-item[1], item[0]))[:LARGEST_SHOWN]
    more = ", ..." if len(shares) > LARGEST_SHOWN else ""
    return ", ".join(f"{name} {share}" for name, share in ranked) + more


def catalog_connections(specs: Iterable[ServiceSpec], max_replicas: Mapping[str, int], *,
                        pool_sizes: Mapping[Tier, int] = POOL_SIZE_BY_TIER,
                        client_connections_per_pod: int = CLIENT_CONNECTIONS_PER_POD) -> list[ServiceConnections]:
    """The catalog's PostgreSQL services with the tier's pool and the stack's HPA ceilings."""
    return [ServiceConnections(spec.name, pool_sizes[spec.tier], client_connections_per_pod, max_replicas[spec.name])
            for spec in specs]


# --- PgBouncer's configuration and its auth lookup ---------------------------------------------------


@dataclass(frozen=True)
class PoolerConfig:
    """Where one PgBouncer listens, which server it pools, and how it looks clients up."""

    server_host: str
    #: File holding the auth role's credentials only (``"role" "password"``); no service's password.
    auth_file: str
    server_port: int = 5432
    listen_addr: str = "0.0.0.0"
    listen_port: int = 5432
    max_client_conn: int = MAX_CLIENT_CONN
    #: Where ``auth_query`` runs: CloudNativePG's ``postgres`` (PgBouncer 1.19+). None runs it in
    #: the client's own database (older PgBouncer, such as Debian 12's 1.18 that the tests run).
    auth_dbname: str | None = "postgres"

    @property
    def auth_function(self) -> str:
        """CloudNativePG's ``public.user_search`` in ``postgres``; in a service database the public
        schema belongs to the service, so there the function lives in a schema of the administrator's."""
        return "public.user_search" if self.auth_dbname else "pgbouncer.user_search"


def pgbouncer_ini(services: Sequence[ServiceConnections], config: PoolerConfig) -> str:
    """The whole ``pgbouncer.ini``: one entry per service database, nothing else reachable (no ``*``)."""
    if any(service.database == AUTH_ROLE for service in services):
        raise ValueError(f"no service may be named after the pooler's auth role {AUTH_ROLE!r}")
    server = f"host={config.server_host} port={config.server_port}"
    lines = ["; Generated by components/data/connection_budget.py.", "[databases]"]
    for service in sorted(services, key=lambda s: s.database):
        lines.append(f"{service.database} = {server} dbname={service.database} "
                     f"pool_size={service.pool_size} max_db_connections={service.pool_size}")
    if config.auth_dbname:
        lines.append(f"{config.auth_dbname} = {server} dbname={config.auth_dbname} pool_size=1 max_db_connections=1")
    lines += [
        "", "[pgbouncer]",
        f"listen_addr = {config.listen_addr}", f"listen_port = {config.listen_port}", "unix_socket_dir =",
        # A server connection is lent for one transaction: session state (SET, prepared statements,
        # advisory locks) does not outlive it, so there is nothing for a reset query to clean.
        "pool_mode = transaction", "server_reset_query =",
        f"max_client_conn = {config.max_client_conn}",
        # Every database states its pool; only an entry without one falls back to this.
        "default_pool_size = 1", "reserve_pool_size = 0",
        # Drivers send these at startup; PgBouncer cannot keep them per client in transaction mode.
        "ignore_startup_parameters = extra_float_digits,options",
        # Clients prove their password with SCRAM against the verifier auth_query returns, and
        # PgBouncer logs in to the server with the keys of that exchange (SCRAM pass-through).
        "auth_type = scram-sha-256", f"auth_file = {config.auth_file}",
        f"auth_user = {AUTH_ROLE}", f"auth_query = SELECT usename, passwd FROM {config.auth_function}($1)",
        *([f"auth_dbname = {config.auth_dbname}"] if config.auth_dbname else []),
        # Loopback here; in the cluster CloudNativePG's Pooler sets its own certificates.
        "client_tls_sslmode = disable", "server_tls_sslmode = disable",
    ]
    return "\n".join(lines) + "\n"


def auth_file(password: str) -> str:
    """PgBouncer's ``auth_file``: the auth role's own login to the server, and nobody else's."""
    return f'"{AUTH_ROLE}" "{password.replace(chr(34), chr(34) * 2)}"\n'


def pooler_auth_sql(services: Sequence[ServiceConnections], config: PoolerConfig, *, password_dir: str,
                    pooler_instances: int) -> str:
    """psql script making the auth role and its ``SECURITY DEFINER`` lookup of ``pg_shadow``; idempotent.

    Run as a superuser after the bootstrap (only a superuser's function reads ``pg_shadow``). The
    role's password is read from ``password_dir/<role>`` like the services'. It may call the lookup
    and connect where the lookup lives, nothing else.
    """
    databases = [config.auth_dbname] if config.auth_dbname else sorted(s.database for s in services)
    plan = sql.BootstrapPlan((), password_dir=password_dir, connection_limit=1)
    lines = [
        "-- Generated by components/data/connection_budget.py: PgBouncer's auth_query role and function.",
        "\\set ON_ERROR_STOP on", "SET client_min_messages = warning;", "",
        # One lookup connection per pooler in the auth database; in each service database the
        # lookups share that database's pool, so they may take as many as the pools hold.
        *sql.login_role(plan, AUTH_ROLE, connection_limit=pooler_instances * (
            1 if config.auth_dbname else sum(service.pool_size for service in services))),
    ]
    schema, _ = config.auth_function.split(".")
    role = sql.quote_identifier(AUTH_ROLE)
    for database in databases:
        lines += ["", f"GRANT CONNECT ON DATABASE {sql.quote_identifier(database)} TO {role};",
                  f"\\connect {sql.quote_identifier(database)}"]
        if schema != "public":
            lines += [f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION CURRENT_USER;",
                      f"ALTER SCHEMA {schema} OWNER TO CURRENT_USER;",
                      f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;", f"GRANT USAGE ON SCHEMA {schema} TO {role};"]
        lines += [
            f"CREATE OR REPLACE FUNCTION {config.auth_function}(uname TEXT)",
            "  RETURNS TABLE (usename name, passwd text)",
            # The search path is pinned: the caller's cannot redirect what the owner's rights run.
            "  LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS",
            "  'SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename=$1;';",
            f"REVOKE ALL ON FUNCTION {config.auth_function}(text) FROM PUBLIC;",
            f"GRANT EXECUTE ON FUNCTION {config.auth_function}(text) TO {role};",
        ]
    return "\n".join(lines) + "\n"
