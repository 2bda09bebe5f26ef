"""PgBouncer in front of PostgreSQL: the connection budget, and the generated files on real servers.

The budget's arithmetic (settings/connection_budget.py) and refusals are checked as literal text, with
the real catalog's figures behind one Pooler per tier.
Then PostgreSQL (bootstrapped by the generated SQL) and Debian's PgBouncer start on loopback,
configured only from the oracle of CloudNativePG's Pooler (tests/oracles/pgbouncer.py:
``pgbouncer_ini`` and ``pooler_auth_sql``); 200 clients at once must all get
through while the server never sees more backends than the pools allow. Debian 12 ships PgBouncer
1.18, which has no ``auth_dbname``: the lookup runs in each service database (``auth_dbname=None``),
the other shape the oracle makes. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.data import sql
from components.data.cnpg_specs import AUTH_ROLE
from services.catalog import CATALOG
from services.model import Dependency
from settings import connection_budget as cb
from settings.loader import load_settings
from tests.conftest import require_tool
from tests.oracles import pgbouncer as pgb
from tests.oracles import postgres_server
from tests.test_data_servers import ADMIN, Postgres, free_port, postgres_bin, private_dir, run, server_account
from tools.offline import stack_values

#: Two of each tier: pools of 4 (core) and 2, 16 server connections in all.
SERVICES = ("admin", "bancai", "codai", "kodex", "logai", "wallet")
#: Clients per service in the 200-client run: in proportion to the pools, so each queue is as long.
CLIENTS = {"codai": 50, "logai": 50, "admin": 25, "bancai": 25, "kodex": 25, "wallet": 25}
SLEEP = 0.5


def services_of(names: tuple[str, ...], max_replicas: int = 2) -> list[cb.ServiceConnections]:
    return cb.catalog_connections([CATALOG[name] for name in names], dict.fromkeys(names, max_replicas))


# --- the budget --------------------------------------------------------------------------------------


def stack_ceilings(stack: str) -> dict[str, int]:
    plan = load_settings(stack, stack_values(stack))
    return {service.spec.name: service.replicas_max for service in plan.services}


#: Per stack: PgBouncers per Pooler and PostgreSQL instances (the sizing profile's), the reserved
#: standbys and pooler auth, (server connections, capacity, spare), and each tier's Pooler's clients.
STACK_FIGURES = {
    "production": (2, 3, {"standbys": 2, "pooler auth": 6}, (104, 182, 78),
                   {"business": 560, "core": 450, "support": 520}),
    "staging": (1, 1, {"standbys": 0, "pooler auth": 3}, (52, 187, 135),
                {"business": 210, "core": 120, "support": 260}),
}


@pytest.mark.parametrize("stack", sorted(STACK_FIGURES))
def test_the_catalog_fits_200_connections_behind_a_pooler_per_tier(stack: str):
    pgbouncers, instances, reserved, server, clients = STACK_FIGURES[stack]
    specs = CATALOG.using(Dependency.POSTGRES)
    services = cb.catalog_connections(specs, stack_ceilings(stack))
    result = cb.budget(services, max_connections=200, pooler_instances=pgbouncers,
                       reserved=cb.Reserved(postgres_instances=instances))
    assert len(services) == 23
    assert sorted(s.name for s in services if s.pool_size == 4) == ["codai", "logai", "memorai"]
    assert {s.pooler for s in services if s.pool_size == 4} == {"core"}
    assert result.reserved == {"superuser": 3, "monitor": 5, "jobs": 2, **reserved}
    assert (result.server_connections, result.server_capacity, result.spare_server_connections) == server
    assert (result.clients, result.client_capacity) == (clients, 1000 * pgbouncers)
    # One PgBouncer of a Pooler down, the one left still takes every pod of its tier at its ceiling.
    assert pgbouncers == 1 or max(result.clients.values()) <= (pgbouncers - 1) * cb.MAX_CLIENT_CONN


def test_a_server_side_that_does_not_fit_is_refused_with_its_figures():
    services = [cb.ServiceConnections(spec.name, 10, 10, 2) for spec in CATALOG.using(Dependency.POSTGRES)]
    with pytest.raises(cb.ConnectionBudgetError) as refused:
        cb.budget(services, max_connections=200, pooler_instances=2, reserved=cb.Reserved(auth_per_pooler=0))
    assert str(refused.value) == (
        "server side over budget: 23 services x pool 10 x 2 PgBouncers per Pooler = 460 server connections > "
        "max_connections 200 - 12 reserved (superuser 3, monitor 5, jobs 2, standbys 2, pooler auth 0) = 188; "
        "largest: admin 20, aide 20, ajutai 20, analizai 20, bancai 20, ...")


def test_the_largest_pools_are_named_first():
    services = services_of(("admin", "codai", "logai"))
    with pytest.raises(cb.ConnectionBudgetError) as refused:
        cb.budget(services, max_connections=36, pooler_instances=3)
    # Two Poolers (core, support) of 3 PgBouncers: 6 auth_query connections.
    assert str(refused.value) == (
        "server side over budget: 3 services: sum of pool_size 10 x 3 PgBouncers per Pooler = 30 server "
        "connections > max_connections 36 - 18 reserved (superuser 3, monitor 5, jobs 2, standbys 2, pooler auth 6) "
        "= 18; largest: codai 12, logai 12, admin 6")
    assert [(refusal.side, refusal.needed) for refusal in refused.value.refusals] == [("server", 48)]


def test_a_client_side_that_does_not_fit_is_refused_with_its_figures():
    services = [*services_of(("admin", "codai", "wallet")), cb.ServiceConnections("logai", 4, 20, 14, "core")]
    with pytest.raises(cb.ConnectionBudgetError) as refused:
        cb.budget(services, max_connections=200, pooler_instances=1, max_client_conn=290)
    # Each Pooler on its own: the core tier's 300 overrun its 290, the others' 20 each do not.
    assert str(refused.value) == (
        "client side over budget in the core Pooler: 2 services: sum of client_connections_per_pod x max_replicas "
        "= 300 client connections > max_client_conn 290 x 1 PgBouncer = 290; largest: logai 280, codai 20")
    assert [(refusal.side, refusal.pooler, refusal.needed) for refusal in refused.value.refusals] == [
        ("client", "core", 300)]


def test_both_sides_over_budget_are_named_together():
    services = [cb.ServiceConnections("codai", 50, 100, 10)]
    with pytest.raises(cb.ConnectionBudgetError) as refused:
        cb.budget(services, max_connections=60, pooler_instances=1, max_client_conn=100,
                  reserved=cb.Reserved(postgres_instances=1))
    assert str(refused.value) == (
        "server side over budget: 1 services x pool 50 x 1 PgBouncer per Pooler = 50 server connections > "
        "max_connections 60 - 11 reserved (superuser 3, monitor 5, jobs 2, standbys 0, pooler auth 1) = 49; "
        "largest: codai 50; and client side over budget: 1 services: sum of client_connections_per_pod x "
        "max_replicas = 1000 client connections > max_client_conn 100 x 1 PgBouncer = 100; largest: codai 1000")
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: cb.ServiceConnections("codai", 0, 10, 2), "codai: pool_size must be at least 1, not 0"),
    (lambda: cb.budget([], max_connections=200, pooler_instances=1), "at least one"),
    (lambda: cb.budget(services_of(("codai", "codai")), max_connections=200, pooler_instances=1), "once each"),
    (lambda: cb.budget(services_of(("codai",)), max_connections=200, pooler_instances=0), "pooler_instances"),
    (lambda: cb.budget(services_of(("codai",)), max_connections=200, pooler_instances=1,
                       reserved=cb.Reserved(postgres_instances=0)), "must not be negative"),
])
def test_malformed_figures_are_refused(call: Callable[[], object], message: str):
    with pytest.raises(ValueError, match=message):
        call()


# --- the generated files -------------------------------------------------------------------------------


def test_the_ini_is_what_cloudnative_pgs_pooler_runs():
    config = pgb.PoolerConfig(server_host="postgres-rw", auth_file="/etc/pgbouncer/userlist.txt")
    assert pgb.pgbouncer_ini(services_of(("kodex", "codai")), config) == """\
; Generated by tests/oracles/pgbouncer.py.
[databases]
codai = host=postgres-rw port=5432 dbname=codai pool_size=4 max_db_connections=4
kodex = host=postgres-rw port=5432 dbname=kodex pool_size=2 max_db_connections=2
postgres = host=postgres-rw port=5432 dbname=postgres pool_size=1 max_db_connections=1

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 5432
unix_socket_dir =
pool_mode = transaction
server_reset_query =
max_client_conn = 1000
default_pool_size = 1
reserve_pool_size = 0
ignore_startup_parameters = extra_float_digits,options
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/userlist.txt
auth_user = cnpg_pooler_pgbouncer
auth_query = SELECT usename, passwd FROM public.user_search($1)
auth_dbname = postgres
client_tls_sslmode = disable
server_tls_sslmode = disable
"""


def test_without_auth_dbname_the_lookup_runs_in_each_service_database():
    config = pgb.PoolerConfig(server_host="127.0.0.1", auth_file="/p/u", server_port=5999, listen_addr="127.0.0.1",
                             listen_port=6999, max_client_conn=300, auth_dbname=None)
    text = pgb.pgbouncer_ini(services_of(("wallet",)), config)
    assert text.splitlines()[2:4] == [
        "wallet = host=127.0.0.1 port=5999 dbname=wallet pool_size=2 max_db_connections=2", ""]
    assert "auth_query = SELECT usename, passwd FROM pgbouncer.user_search($1)\n" in text
    assert "auth_dbname" not in text and "max_client_conn = 300\n" in text and "listen_port = 6999\n" in text
    assert pgb.auth_file('pa"ss') == '"cnpg_pooler_pgbouncer" "pa""ss"\n'
    with pytest.raises(ValueError, match="auth role"):
        pgb.pgbouncer_ini([cb.ServiceConnections("cnpg-pooler-pgbouncer", 1, 1, 1)], config)


def test_the_auth_sql_grants_the_lookup_and_nothing_else():
    config = pgb.PoolerConfig(server_host="postgres-rw", auth_file="/p/u")
    text = pgb.pooler_auth_sql(services_of(("codai",)), config, password_dir="/run/pw", pooler_instances=3)
    assert text.split("\\unset password\n", 1)[1] == """
GRANT CONNECT ON DATABASE "postgres" TO "cnpg_pooler_pgbouncer";
\\connect "postgres"
CREATE OR REPLACE FUNCTION public.user_search(uname TEXT)
  RETURNS TABLE (usename name, passwd text)
  LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
  'SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename=$1;';
REVOKE ALL ON FUNCTION public.user_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.user_search(text) TO "cnpg_pooler_pgbouncer";
"""
    assert "NOCREATEDB NOCREATEROLE CONNECTION LIMIT 3 PASSWORD :'password'" in text
    assert "/run/pw/cnpg_pooler_pgbouncer" in text


# --- on real servers ------------------------------------------------------------------------------------


def kill_pid(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Stack:
    """PostgreSQL and one PgBouncer in front of it, with the services' passwords."""

    server: Postgres
    port: int
    passwords: dict[str, str]
    services: list[cb.ServiceConnections]
    log: Path
    #: The pooler's auth SQL, to run again.
    auth_sql: Path

    def client(self, query: str) -> list[str]:
        """A psql command line; :meth:`client_env` points it at PgBouncer as one user."""
        return [str(self.server.bin / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", query]

    def client_env(self, user: str, database: str, password: str | None = None) -> dict[str, str]:
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": user,
                "PGDATABASE": database, "PGPASSWORD": password or self.passwords[user], "PGCONNECT_TIMEOUT": "10"}

    def through_pooler(self, user: str, database: str, query: str = "SELECT current_user || '@' || current_database()",
                       password: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(self.client(query), self.client_env(user, database, password))


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until PgBouncer accepts connections; its log in the failure when it exits or never listens."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited ({process.returncode}): {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"pgbouncer does not listen on {port}: {log.read_text()}")


def start_server(pg_bin: Path, account: tuple[int, int] | None, cleanup: ExitStack) -> Postgres:
    """An initdb'd server on loopback; stopped (and killed by PID if pg_ctl cannot) at the end."""
    template = Postgres(pg_bin, private_dir("codai-pgb-template-", account), 0, account)
    cleanup.callback(shutil.rmtree, template.root, ignore_errors=True)
    template.as_server(str(pg_bin / "initdb"), "-D", "data", "-U", ADMIN, "--no-sync", "-E", "UTF8",
                       "--locale=C", "--auth=reject")
    # The pooler's lookup role reaches every database (PgBouncer 1.18 runs auth_query in each), as
    # CloudNativePG's own pg_hba rules admit it ahead of ours (by certificate there, SCRAM here).
    lookup = (f"host all {AUTH_ROLE} all scram-sha-256",)
    server = Postgres(pg_bin, private_dir("codai-pgb-", account), free_port(), account, operator_hba=lookup)

    def stop() -> None:
        pid_file = server.root / "data" / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        try:
            server.stop()
        finally:
            if pid:
                kill_pid(pid)

    cleanup.callback(stop)
    server.start(template.root / "data")
    return server


def start_pgbouncer(binary: str, folder: Path, ini: str, account: tuple[int, int] | None,
                    cleanup: ExitStack) -> tuple[subprocess.Popen[bytes], Path]:
    """PgBouncer in the foreground as ``account`` (it refuses root), its log in ``folder``."""
    (folder / "pgbouncer.ini").write_text(ini)
    log = folder / "pgbouncer.log"
    with log.open("wb") as out:
        kwargs: dict[str, Any] = {"user": account[0], "group": account[1], "extra_groups": []} if account else {}
        process = subprocess.Popen([binary, str(folder / "pgbouncer.ini")], stdout=out, stderr=subprocess.STDOUT,
                                   cwd=folder, **kwargs)

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill_pid(process.pid)
            process.wait()

    cleanup.callback(stop)
    return process, log


@pytest.fixture(scope="module")
def pooler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack, everything it started stopped by PID afterwards, whatever the tests did."""
    pgbouncer = require_tool("pgbouncer", "/usr/sbin")
    with ExitStack() as cleanup:
        yield start_stack(pgbouncer, tmp_path_factory.mktemp("pw"), cleanup)


def start_stack(pgbouncer: str, secrets: Path, cleanup: ExitStack) -> Stack:
    """Bootstrap SQL, then the pooler's auth SQL, then PgBouncer from the generated ini: nothing by hand."""
    account = server_account()
    server = start_server(postgres_bin(), account, cleanup)
    folder = private_dir("codai-pgbouncer-", account)
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    passwords = {role: f"{role}-{os.urandom(12).hex()}"
                 for role in (*SERVICES, postgres_server.MONITOR_ROLE, AUTH_ROLE)}
    for role, password in passwords.items():
        (secrets / role).write_text(password)
    plan = sql.BootstrapPlan(SERVICES, password_dir=str(secrets), connection_limit=10)
    (secrets / "bootstrap.sql").write_text(postgres_server.owned_server_bootstrap(plan))
    server.script("bootstrap-postgres.sh", str(secrets / "bootstrap.sql"))

    services = services_of(SERVICES)
    port = free_port()
    config = pgb.PoolerConfig(server_host="127.0.0.1", server_port=server.port, listen_addr="127.0.0.1",
                             listen_port=port, max_client_conn=250, auth_file=str(folder / "userlist.txt"),
                             auth_dbname=None)
    (secrets / "auth.sql").write_text(pgb.pooler_auth_sql(services, config, password_dir=str(secrets),
                                                         pooler_instances=1))
    server.script("bootstrap-postgres.sh", str(secrets / "auth.sql"))
    (folder / "userlist.txt").write_text(pgb.auth_file(passwords[AUTH_ROLE]))
    if account:
        os.chown(folder / "userlist.txt", *account)
    (folder / "userlist.txt").chmod(0o600)
    process, log = start_pgbouncer(pgbouncer, folder, pgb.pgbouncer_ini(services, config), account, cleanup)
    wait_for_port(port, process, log)
    return Stack(server, port, passwords, services, log, secrets / "auth.sql")


def backends(server: Postgres) -> dict[str, int]:
    """Client backends per service database, as the server counts them."""
    databases = ", ".join(sql.quote_literal(name) for name in SERVICES)
    out = server.psql("SELECT datname, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                      f"AND datname IN ({databases}) GROUP BY datname").stdout
    return {name: int(count) for name, count in (line.split("|") for line in out.split())}


@dataclass
class Sampler:
    """Samples ``pg_stat_activity`` until stopped: the most backends seen per database and in all."""

    server: Postgres
    most: dict[str, int] = field(default_factory=dict)
    most_total: int = 0
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            seen = backends(self.server)
            for name, count in seen.items():
                self.most[name] = max(self.most.get(name, 0), count)
            self.most_total = max(self.most_total, sum(seen.values()))
            self.samples += 1


def run_clients(pooler: Stack) -> list[tuple[str, int, str]]:
    """200 psql clients at once, each holding a server connection for ``SLEEP`` seconds."""
    started: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        for name, count in CLIENTS.items():
            role = sql.identifier(name)
            for _ in range(count):
                process = subprocess.Popen(pooler.client(f"SELECT pg_sleep({SLEEP})"),
                                           env=pooler.client_env(role, role), stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
                started.append((name, process))
        results = []
        for name, process in started:
            _, err = process.communicate(timeout=60)
            results.append((name, process.returncode, err))
        return results
    finally:
        for _, process in started:  # a client still running after a failure is killed by its PID
            if process.poll() is None:
                kill_pid(process.pid)
                process.wait()


def test_200_clients_share_the_pools_and_the_server_never_sees_more(pooler: Stack):
    result = cb.budget(pooler.services, max_connections=50, pooler_instances=1, max_client_conn=250,
                       reserved=cb.Reserved(postgres_instances=1, auth_per_pooler=0))
    assert sum(CLIENTS.values()) == 200 and result.server_connections == 16
    sampler = Sampler(pooler.server)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    began = time.monotonic()
    try:
        results = run_clients(pooler)
    finally:
        sampler.stop.set()
        thread.join(timeout=10)
    elapsed = time.monotonic() - began
    failures = [(name, code, err) for name, code, err in results if code != 0]
    assert failures == [], pooler.log.read_text()[-2000:]
    pools = {pgb.database_name(service): service.pool_size for service in pooler.services}
    print(f"\n200 clients in {elapsed:.1f}s, {sampler.samples} samples; most backends {sampler.most}, "
          f"total {sampler.most_total} (budget {result.server_connections})")
    assert sampler.samples >= 10
    assert all(sampler.most[name] <= pools[name] for name in pools), (sampler.most, pools)
    assert sampler.most_total <= result.server_connections <= result.server_capacity
    # The pools were full: clients queued in PgBouncer rather than reaching the server.
    assert sampler.most == pools
    assert elapsed >= max(CLIENTS[name] / pools[name] for name in pools) * SLEEP


def test_a_service_cannot_reach_another_database_through_the_pooler(pooler: Stack):
    assert pooler.through_pooler("codai", "codai").stdout.strip() == "codai@codai"
    denied = pooler.through_pooler("codai", "wallet")
    # The server's pg_hba.conf (cnpg_specs.SERVICE_HBA's final reject) refuses codai's role on wallet's
    # database; PgBouncer passes that on.
    assert denied.returncode != 0 and 'pg_hba.conf rejects connection for host "127.0.0.1", user "codai", ' \
        'database "wallet"' in denied.stderr
    # A database the ini does not list is refused by PgBouncer itself, which says no more than that.
    shared = pooler.through_pooler("codai", "postgres")
    assert shared.returncode != 0 and "SASL authentication failed" in shared.stderr


def test_unknown_users_and_wrong_passwords_are_refused(pooler: Stack):
    unknown = pooler.through_pooler("intruder", "codai", password="whatever-it-is-long")
    # auth_query found no such role: PgBouncer refuses before any server connection is made.
    assert unknown.returncode != 0 and "FATAL:  no such user" in unknown.stderr
    wrong = pooler.through_pooler("wallet", "wallet", password="not-the-password")
    assert wrong.returncode != 0 and "FATAL:  SASL authentication failed" in wrong.stderr


def test_the_auth_role_reads_no_service_data_and_its_sql_runs_twice(pooler: Stack):
    server = pooler.server
    server.psql("CREATE TABLE IF NOT EXISTS secrets (v text)", database="codai", user="codai",
                password=pooler.passwords["codai"])
    user, password = AUTH_ROLE, pooler.passwords[AUTH_ROLE]
    read = server.psql("SELECT * FROM public.secrets", database="codai", user=user, password=password, check=False)
    assert read.returncode != 0 and "permission denied" in read.stderr
    state = ("SELECT rolconnlimit, rolsuper, (SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'pgbouncer'),"
             " (SELECT proacl FROM pg_proc WHERE proname = 'user_search'),"
             " (SELECT count(*) FROM pgbouncer.user_search('wallet')) FROM pg_roles WHERE rolname = current_user")
    before = server.psql(state, database="wallet", user=user, password=password).stdout.strip()
    assert before == "16|f|postgres|{postgres=X/postgres,cnpg_pooler_pgbouncer=X/postgres}|1"
    server.script("bootstrap-postgres.sh", str(pooler.auth_sql))
    assert server.psql(state, database="wallet", user=user, password=password).stdout.strip() == before
    assert pooler.through_pooler("wallet", "wallet").stdout.strip() == "wallet@wallet"
