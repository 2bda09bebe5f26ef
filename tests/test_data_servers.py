"""The data tier's generated files and scripts, run against real PostgreSQL and Redis servers.

PostgreSQL starts from the tests' oracle of the old in-cluster server (tests/oracles/postgres_server.py:
its postgresql.conf and pg_hba.conf, which ends in the Cluster's own lines, and the exporter's
login and closed shared databases its bootstrap added to the program's).

Servers start on loopback, on free ports, in temporary directories. PostgreSQL refuses to run
as root, so when the tests run as root (CI containers) the server runs as ``nobody`` in a
directory owned by it. Under CI=true a missing server binary fails these tests (``require_tool``).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.data import acl, config_files, sql
from components.data.job_scripts import SCRIPTS_DIR
from settings.quantities import Memory
from tests.conftest import ROOT, require_tool
from tests.oracles import postgres_server
from tests.oracles.postgres_server import MONITOR_ROLE

pytestmark = pytest.mark.realtool

SERVICES = ("codai", "wallet")
ADMIN = "postgres"


def run(command: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs ``command``; the caller looks at the exit status (failures are expected in some tests)."""
    return subprocess.run(command, check=False, capture_output=True, text=True, env=dict(env))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin() -> Path:
    """The newest PostgreSQL server of the machine (Debian keeps them per major version)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    extra = [str(p) for p in candidates]
    return Path(require_tool("pg_ctl", *extra)).parent


def server_account() -> tuple[int, int] | None:
    """Who runs the server: ``nobody`` when we are root (postgres refuses root), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:  # a minimal image without it: make a system user for the tests
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "codai-tests"],
                       check=True)
        entry = pwd.getpwnam("codai-tests")
    return entry.pw_uid, entry.pw_gid


def private_dir(prefix: str, account: tuple[int, int] | None) -> Path:
    """A temp directory the server's account owns; under /tmp, which every account can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if account:
        os.chown(path, *account)
    return path


# --- PostgreSQL -------------------------------------------------------------------------------------


@dataclass
class Postgres:
    bin: Path
    root: Path
    port: int
    account: tuple[int, int] | None
    #: pg_hba lines of CloudNativePG's own for further roles (a pooler's lookup role): the oracle puts them
    #: ahead of the program's lines, as the operator does, since its final reject would refuse them.
    operator_hba: tuple[str, ...] = ()

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def as_server(self, *command: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.account:
            kwargs = {"user": self.account[0], "group": self.account[1], "extra_groups": []}
        return subprocess.run(command, check=True, capture_output=True, text=True, cwd=self.root, **kwargs)

    def start(self, template: Path) -> None:
        """Copies ``template`` (an initdb'd data directory: much faster than initdb) and starts on it."""
        self.socket_dir.mkdir()
        hba = self.root / "pg_hba.conf"
        hba.write_text(postgres_server.pg_hba_conf(ADMIN, MONITOR_ROLE, self.operator_hba))
        conf = self.root / "postgresql.conf"
        paths = postgres_server.PostgresPaths(hba_file=str(hba), socket_dir=str(self.socket_dir), port=self.port)
        conf.write_text(postgres_server.postgresql_conf(paths, memory_limit=Memory.parse("1Gi"), max_connections=50))
        for path in (self.socket_dir, hba, conf):
            if self.account:
                os.chown(path, *self.account)
        self.as_server("cp", "-a", str(template), str(self.root / "data"))
        # The oracle's file as the old pod used it; the test only narrows listening to loopback
        # and trades durability for speed.
        options = f"-c config_file={conf} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.as_server(str(self.bin / "pg_ctl"), "-D", "data", "-l", "server.log", "-w", "-t", "30",
                       "-o", options, "start")

    def stop(self) -> None:
        try:
            self.as_server(str(self.bin / "pg_ctl"), "-D", "data", "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def admin_env(self) -> dict[str, str]:
        """libpq environment of the administrator, over the socket (trust, as in the pod)."""
        return {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}", "PGHOST": str(self.socket_dir),
                "PGPORT": str(self.port), "PGUSER": ADMIN, "PGDATABASE": "postgres"}

    def psql(self, query: str, *, database: str = "postgres", user: str = ADMIN, password: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs ``query`` as the admin over the socket, or as ``user`` with ``password`` over TCP."""
        env = self.admin_env()
        if password is not None:
            env.update(PGHOST="127.0.0.1", PGUSER=user, PGPASSWORD=password)
        result = run([str(self.bin / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", query], env)
        if check and result.returncode != 0:
            raise AssertionError(f"psql as {user} on {database} failed: {result.stderr}")
        return result

    def script(self, name: str, *args: str, env: Mapping[str, str] | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs one of the jobs' scripts, unchanged, against this server."""
        result = run(["sh", str(SCRIPTS_DIR / name), *args], {**self.admin_env(), "WAIT_TRIES": "3", **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"{name} failed ({result.returncode}): {result.stderr}")
        return result


@pytest.fixture(scope="module")
def pg_bin() -> Path:
    return postgres_bin()


@pytest.fixture(scope="module")
def postgres_factory(pg_bin: Path) -> Iterator[Any]:
    """Starts empty servers; ``initdb`` runs once, each server starts on a copy of its result."""
    account = server_account()
    template = Postgres(pg_bin, private_dir("codai-pg-template-", account), 0, account)
    template.as_server(str(pg_bin / "initdb"), "-D", "data", "-U", ADMIN, "--no-sync", "-E", "UTF8",
                       "--locale=C", "--auth=reject")
    servers: list[Postgres] = []

    def start() -> Postgres:
        server = Postgres(pg_bin, private_dir("codai-pg-", account), free_port(), account)
        servers.append(server)
        server.start(template.root / "data")
        return server

    yield start
    for server in servers:
        server.stop()
    shutil.rmtree(template.root, ignore_errors=True)


@dataclass
class Secrets:
    """The password files the bootstrap Job reads (a projected volume in the cluster)."""

    folder: Path
    passwords: dict[str, str] = field(default_factory=dict)

    def set(self, role: str, password: str) -> None:
        self.passwords[role] = password
        (self.folder / role).write_text(password)


@pytest.fixture(scope="module")
def secrets() -> Iterator[Secrets]:
    folder = Path(tempfile.mkdtemp(prefix="codai-pw-"))
    store = Secrets(folder)
    for role in (*SERVICES, MONITOR_ROLE):
        store.set(role, f"{role}-{os.urandom(12).hex()}")
    yield store
    shutil.rmtree(folder, ignore_errors=True)


def bootstrap_file(tmp: Path, secrets: Secrets) -> Path:
    plan = sql.BootstrapPlan(SERVICES, password_dir=str(secrets.folder), connection_limit=10)
    path = tmp / "bootstrap.sql"
    path.write_text(postgres_server.owned_server_bootstrap(plan))
    return path


@pytest.fixture(scope="module")
def primary(postgres_factory: Any, secrets: Secrets, tmp_path_factory: pytest.TempPathFactory) -> Postgres:
    """A server bootstrapped once by the Job's script, with a table of rows per service."""
    server: Postgres = postgres_factory()
    server.script("bootstrap-postgres.sh", str(bootstrap_file(tmp_path_factory.mktemp("sql"), secrets)))
    for role in SERVICES:
        server.psql(f"CREATE TABLE items (id int PRIMARY KEY, owner text); "
                    f"INSERT INTO items SELECT n, '{role}' FROM generate_series(1, 50) AS n",
                    database=role, user=role, password=secrets.passwords[role])
    return server


def catalog_state(server: Postgres) -> str:
    """Roles, their attributes and memberships, databases with owners and ACLs: what the bootstrap sets."""
    return server.psql(
        "SELECT string_agg(line, E'\\n' ORDER BY line) FROM ("
        " SELECT format('role %s login=%s super=%s createdb=%s limit=%s', rolname, rolcanlogin, rolsuper,"
        "   rolcreatedb, rolconnlimit) AS line FROM pg_roles WHERE rolname !~ '^pg_'"
        " UNION ALL SELECT format('member %s of %s', m.rolname, r.rolname) FROM pg_auth_members a"
        "   JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member"
        " UNION ALL SELECT format('database %s owner %s acl %s', datname, pg_get_userbyid(datdba), datacl)"
        "   FROM pg_database) AS state"
    ).stdout


def test_the_server_starts_with_the_generated_configuration(primary: Postgres):
    settings = dict(line.split("|") for line in primary.psql(
        "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
        "('shared_buffers', 'password_encryption', 'max_connections', 'hba_file', 'work_mem')").stdout.split())
    assert settings["password_encryption"] == "scram-sha-256"
    assert settings["shared_buffers"] == f"{256 * 1024 // 8}8kB"  # a quarter of the 1Gi limit
    assert settings["hba_file"].endswith("pg_hba.conf") and settings["max_connections"] == "50"


def test_bootstrap_runs_twice_without_changing_anything_or_losing_data(primary: Postgres, secrets: Secrets,
                                                                       tmp_path: Path):
    before = catalog_state(primary)
    primary.script("bootstrap-postgres.sh", str(bootstrap_file(tmp_path, secrets)))
    assert catalog_state(primary) == before
    assert "role codai login=t super=f createdb=f limit=10" in before
    assert "database codai owner codai acl {codai=CTc/codai}" in before  # PUBLIC has nothing
    for role in SERVICES:
        count = primary.psql("SELECT count(*) FROM items", database=role, user=role,
                             password=secrets.passwords[role]).stdout.strip()
        assert count == "50"


def test_the_bootstrap_never_drops_or_deletes():
    text = postgres_server.owned_server_bootstrap(sql.BootstrapPlan(SERVICES, "/run/pw", 10))
    assert not re.search(r"\b(DROP|TRUNCATE|DELETE)\b", text, re.IGNORECASE)


def test_a_service_reaches_its_own_database_only(primary: Postgres, secrets: Secrets):
    codai = {"user": "codai", "password": secrets.passwords["codai"]}
    denied = primary.psql("SELECT 1", database="wallet", check=False, **codai)
    # Refused by cnpg_specs.SERVICE_HBA's own final reject: in the cluster the operator's default
    # line follows ours, so a connection no line of ours matched would get past pg_hba there.
    assert denied.returncode != 0 and 'pg_hba.conf rejects connection for host "127.0.0.1", user "codai", ' \
        'database "wallet"' in denied.stderr
    for shared in postgres_server.SHARED_DATABASES:
        refused = primary.psql("SELECT 1", database=shared, check=False, **codai)
        assert "pg_hba.conf rejects connection" in refused.stderr
    # pg_hba.conf holds even where a GRANT would let the role in (the bootstrap's REVOKE undone by hand).
    primary.psql('GRANT CONNECT ON DATABASE "wallet" TO codai')
    try:
        assert "pg_hba.conf rejects connection" in primary.psql("SELECT 1", database="wallet", check=False,
                                                                **codai).stderr
    finally:
        primary.psql('REVOKE CONNECT ON DATABASE "wallet" FROM codai')
    # Even with a table handed over explicitly, reading another database needs a connection to it.
    primary.psql("GRANT SELECT ON items TO codai", database="wallet", user="wallet",
                 password=secrets.passwords["wallet"])
    try:
        assert primary.psql("SELECT count(*) FROM items", database="wallet", check=False, **codai).returncode != 0
    finally:
        primary.psql("REVOKE SELECT ON items FROM codai", database="wallet", user="wallet",
                     password=secrets.passwords["wallet"])
    wrong = primary.psql("SELECT 1", database="codai", user="codai", password="not-the-password", check=False)
    assert "password authentication failed" in wrong.stderr


def test_a_password_stored_as_md5_does_not_log_in(primary: Postgres, secrets: Secrets):
    """SCRAM only. Under ``md5`` PostgreSQL still runs SCRAM for a password stored as SCRAM, so only
    a password stored as MD5 (an old role's, or one set with password_encryption = md5) tells the
    two methods apart: ``md5`` would let it in, ``scram-sha-256`` never does."""
    current, legacy = secrets.passwords["codai"], "an-md5-stored-password"
    primary.psql(f"SET password_encryption = 'md5'; ALTER ROLE codai PASSWORD {sql.quote_literal(legacy)}")
    try:
        refused = primary.psql("SELECT 1", database="codai", user="codai", password=legacy, check=False)
        assert refused.returncode != 0 and 'password authentication failed for user "codai"' in refused.stderr
    finally:
        primary.psql(f"ALTER ROLE codai PASSWORD {sql.quote_literal(current)}")
    assert primary.psql("SELECT 1", database="codai", user="codai", password=current).stdout.strip() == "1"


def test_the_monitor_role_reads_statistics_and_no_data(primary: Postgres, secrets: Secrets):
    user, password = MONITOR_ROLE, secrets.passwords[MONITOR_ROLE]
    databases = primary.psql("SELECT count(*) FROM pg_stat_database WHERE datname IN ('codai', 'wallet')",
                             user=user, password=password).stdout.strip()
    assert databases == "2"
    assert primary.psql("SELECT 1", database="codai", user=user, password=password, check=False).returncode != 0


def test_bootstrap_updates_a_changed_password(postgres_factory: Any, tmp_path: Path):
    server: Postgres = postgres_factory()
    store = Secrets(tmp_path / "pw")
    store.folder.mkdir()
    for role in (*SERVICES, MONITOR_ROLE):
        store.set(role, f"first-{role}-password")
    server.script("bootstrap-postgres.sh", str(bootstrap_file(tmp_path, store)))
    store.set("codai", "second-codai-password")
    server.script("bootstrap-postgres.sh", str(bootstrap_file(tmp_path, store)))
    assert server.psql("SELECT 1", database="codai", user="codai", password="second-codai-password").returncode == 0
    old = server.psql("SELECT 1", database="codai", user="codai", password="first-codai-password", check=False)
    assert old.returncode != 0

    # A missing password file stops the bootstrap before the role is touched.
    (store.folder / "wallet").unlink()
    failed = server.script("bootstrap-postgres.sh", str(bootstrap_file(tmp_path, store)), check=False)
    assert failed.returncode != 0
    assert server.psql("SELECT 1", database="wallet", user="wallet", password="first-wallet-password").returncode == 0


# --- backups ----------------------------------------------------------------------------------------


def backup_env(folder: Path, keep: int = 2) -> dict[str, str]:
    return {"BACKUP_DIR": str(folder), "BACKUP_KEEP": str(keep), "BACKUP_DATABASES": " ".join(SERVICES)}


def restore_commands(backup: Path) -> str:
    """The in-pod commands of docs/restore-postgres.md, with the pod's paths made local."""
    text = (ROOT / "docs" / "restore-postgres.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    steps = [block for block in blocks if "restore.sh" in block]
    assert len(steps) == 1, "docs/restore-postgres.md must hold exactly one block that runs restore.sh"
    commands = re.sub(r"/backups/\d{8}T\d{6}Z", f"/backups/{backup.name}", steps[0])
    return commands.replace("/backups", str(backup.parent)).replace("/scripts/", f"{SCRIPTS_DIR}/")


def test_a_backup_restores_into_an_empty_server_with_the_same_rows(
    primary: Postgres, postgres_factory: Any, secrets: Secrets, tmp_path: Path
):
    folder = tmp_path / "backups"
    folder.mkdir()
    primary.script("backup.sh", env=backup_env(folder))
    (backup,) = folder.iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}Z", backup.name)
    assert sorted(p.name for p in backup.iterdir()) == ["SHA256SUMS", "codai.dump", "wallet.dump"]
    # pg_restore's table of contents states the archive's format and compression (PostgreSQL 15 names
    # the gzip level, 16 and later the method).
    listing = run(["pg_restore", "--list", str(backup / "codai.dump")], os.environ).stdout
    assert "Format: CUSTOM" in listing and re.search(r"Compression: (6|gzip)$", listing, re.MULTILINE), listing

    # The documented procedure: a new server, the bootstrap job, then the restore block of the doc.
    empty: Postgres = postgres_factory()
    empty.script("bootstrap-postgres.sh", str(bootstrap_file(tmp_path, secrets)))
    # The restore pod reads the administrator's name from the mounted Secret, as the backup job does.
    (tmp_path / "username").write_text(ADMIN)
    pod_env = {**empty.admin_env(), "PGUSER": "", "PGUSER_FILE": str(tmp_path / "username"), "WAIT_TRIES": "3"}
    result = run(["sh", "-eu", "-c", restore_commands(backup)], pod_env)
    assert result.returncode == 0, result.stderr
    for role in SERVICES:
        rows = empty.psql("SELECT owner, count(*), sum(id) FROM items GROUP BY owner", database=role, user=role,
                          password=secrets.passwords[role]).stdout.strip()
        assert rows == f"{role}|50|1275"
    # The service is again the owner of what it made: it can write after the restore.
    empty.psql("INSERT INTO items VALUES (51, 'codai')", database="codai", user="codai",
               password=secrets.passwords["codai"])

    # Restoring over data is refused.
    again = run(["sh", "-eu", "-c", restore_commands(backup)], pod_env)
    assert again.returncode != 0 and "is not empty" in again.stderr


def test_backups_keep_the_newest_and_a_failed_run_deletes_nothing(primary: Postgres, tmp_path: Path):
    folder = tmp_path / "backups"
    old = ["20240101T023000Z", "20240102T023000Z", "20240103T023000Z"]
    for name in old:
        (folder / name).mkdir(parents=True)
    (folder / "20240104T023000Z.partial").mkdir()  # a run that was killed

    failing = {**backup_env(folder), "BACKUP_DATABASES": "codai missing_database"}
    assert primary.script("backup.sh", env=failing, check=False).returncode != 0
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".partial")) == old

    primary.script("backup.sh", env=backup_env(folder, keep=2))
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 2 and kept[0] == old[-1] and kept[1] > old[-1]  # the newest old one and today's


def test_a_corrupted_backup_is_refused(primary: Postgres, tmp_path: Path):
    folder = tmp_path / "backups"
    folder.mkdir()
    primary.script("backup.sh", env=backup_env(folder))
    (backup,) = folder.iterdir()
    with (backup / "codai.dump").open("ab") as dump:
        dump.write(b"garbage")
    result = primary.script("restore.sh", str(backup), check=False)
    assert result.returncode != 0 and "does not match its SHA256SUMS" in result.stderr


def test_upload_copies_the_newest_backup_and_prunes_the_store(tmp_path: Path):
    """upload.sh against a stand-in for rclone that keeps the "bucket" in a local folder."""
    local, bucket, bin_dir = tmp_path / "local", tmp_path / "bucket", tmp_path / "bin"
    for folder in (local, bucket, bin_dir):
        folder.mkdir()
    for name in ("20240101T023000Z", "20240102T023000Z"):
        (bucket / name).mkdir()
        (bucket / name / "SHA256SUMS").write_text("")
    newest = local / "20240103T023000Z"
    newest.mkdir()
    (newest / "codai.dump").write_text("dump")
    (newest / "SHA256SUMS").write_text("sums")
    (local / "20240101T023000Z").mkdir()  # an older local backup is not uploaded again
    calls = tmp_path / "calls"
    # The subcommands upload.sh uses, with remote paths `remote:<path>` under the bucket folder.
    (bin_dir / "rclone").write_text(f"""#!/bin/sh
echo "$*" >> {calls}
path() {{ echo "$1" | sed 's|^remote:|{bucket}/|'; }}
case "$1" in
  copy) mkdir -p "$(path "$5")"; for f in "$4"/*; do [ "$(basename "$f")" = "$3" ] || cp "$f" "$(path "$5")/"; done ;;
  copyto) cp "$2" "$(path "$3")" ;;
  lsf) for d in "$(path "$3")"/*/; do basename "$d"; echo /; done | paste -d '' - - ;;
  purge) rm -rf "$(path "$2")" ;;
esac
""")
    (bin_dir / "rclone").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKUP_DIR": str(local),
           "BACKUP_REMOTE": "remote:", "BACKUP_KEEP": "2"}
    result = run(["sh", str(SCRIPTS_DIR / "upload.sh")], env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in bucket.iterdir()) == ["20240102T023000Z", "20240103T023000Z"]
    assert (bucket / "20240103T023000Z" / "codai.dump").read_text() == "dump"
    log = calls.read_text().splitlines()
    assert log.index(next(c for c in log if c.startswith("copyto"))) > log.index(
        next(c for c in log if c.startswith("copy ")))  # the checksums land last


# --- Redis ------------------------------------------------------------------------------------------


class RedisError(Exception):
    pass


class RespClient:
    """Enough of the Redis protocol to send commands and read replies (no client library needed)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __call__(self, *args: str) -> Any:
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        self.sock.sendall(payload.encode())
        return self._reply()

    def _reply(self) -> Any:
        line = self.reader.readline().decode().rstrip("\r\n")
        kind, rest = line[0], line[1:]
        if kind == "+":
            return rest
        if kind == "-":
            raise RedisError(rest)
        if kind == ":":
            return int(rest)
        if kind == "$":
            return None if rest == "-1" else self.reader.read(int(rest) + 2)[:-2].decode()
        if kind == "*":
            return [self._reply() for _ in range(int(rest))]
        raise AssertionError(f"unexpected reply {line!r}")


@dataclass
class Redis:
    binary: str
    root: Path
    port: int
    acl_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    clients: list[RespClient] = field(default_factory=list)

    def start(self) -> None:
        paths = config_files.RedisPaths(data_dir=str(self.root / "data"), port=self.port, bind="127.0.0.1",
                                        acl_file=str(self.acl_file or self.root / "users.acl"))
        (self.root / "data").mkdir(exist_ok=True)
        conf = config_files.redis_conf(paths, memory_limit=Memory.parse("256Mi"), maxmemory_percent=80,
                                       eviction_policy="volatile-lru")
        if self.acl_file is None:  # a stand-in for an external server: no ACL file, the stock default user
            conf = "\n".join(line for line in conf.splitlines() if not line.startswith("aclfile"))
        (self.root / "redis.conf").write_text(conf)
        self.process = subprocess.Popen([self.binary, str(self.root / "redis.conf")], cwd=self.root,
                                        stdout=(self.root / "redis.log").open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((self.root / "redis.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.process:
            self.process.terminate()
            self.process.wait(10)

    def client(self, user: str | None = None, password: str | None = None) -> RespClient:
        client = RespClient(self.port)
        self.clients.append(client)
        if user is not None:
            assert client("AUTH", user, password or "") == "OK"
        return client


def users() -> list[acl.AclUser]:
    return [*(acl.service_user(s) for s in SERVICES), acl.exporter_user(), acl.healthcheck_user(),
            acl.default_user()]


@pytest.fixture(scope="module")
def redis_passwords() -> dict[str, str]:
    return {name: os.urandom(16).hex() for name in (*SERVICES, acl.EXPORTER_USER, acl.HEALTHCHECK_USER)}


@pytest.fixture(scope="module")
def redis_binary() -> str:
    require_tool("redis-cli")
    return require_tool("redis-server")


@pytest.fixture(scope="module")
def redis_with_acl_file(redis_binary: str, redis_passwords: dict[str, str]) -> Iterator[Redis]:
    """An in-cluster server: the generated redis.conf and ACL file."""
    root = Path(tempfile.mkdtemp(prefix="codai-redis-"))
    (root / "users.acl").write_text(acl.acl_file(users(), redis_passwords))
    server = Redis(redis_binary, root, free_port(), acl_file=root / "users.acl")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_bootstrapped(redis_binary: str, redis_passwords: dict[str, str]) -> Iterator[Redis]:
    """An external server: stock users, then the bootstrap script's ACL SETUSER commands, run twice."""
    root = Path(tempfile.mkdtemp(prefix="codai-redis-ext-"))
    server = Redis(redis_binary, root, free_port())
    server.start()
    stock = server.client()
    assert stock("ACL", "SETUSER", "admin", "on", ">admin-password", "~*", "&*", "+@all") == "OK"
    # The administrator's Secret as the Job mounts it: one file per key.
    (root / "admin-username").write_text("admin")
    (root / "admin-password").write_text("admin-password")
    (root / "commands").write_text(acl.setuser_commands(users(), redis_passwords))
    env = {**os.environ, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(server.port),
           "REDIS_USER_FILE": str(root / "admin-username"), "REDIS_PASSWORD_FILE": str(root / "admin-password"),
           "WAIT_TRIES": "3"}
    for _ in range(2):
        result = run(["sh", str(SCRIPTS_DIR / "bootstrap-redis.sh"), str(root / "commands")], env)
        assert result.returncode == 0, result.stderr
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["aclFile", "setuser"])
def redis(request: pytest.FixtureRequest) -> Redis:
    server: Redis = request.getfixturevalue("redis_with_acl_file" if request.param == "aclFile"
                                            else "redis_bootstrapped")
    return server


def test_a_service_touches_only_its_own_keys_and_channels(redis: Redis, redis_passwords: dict[str, str]):
    codai = redis.client("codai", redis_passwords["codai"])
    assert codai("SET", "codai:session:1", "x") == "OK"
    assert codai("GET", "codai:session:1") == "x"
    assert codai("PUBLISH", "codai:events", "hello") == 0
    assert codai("EVAL", "return redis.call('GET', KEYS[1])", "1", "codai:session:1") == "x"
    for command in (("GET", "wallet:balance"), ("SET", "wallet:balance", "0"), ("GET", "session:1"),
                    ("PUBLISH", "wallet:events", "x"), ("EVAL", "return 1", "1", "wallet:balance"),
                    ("RENAME", "codai:session:1", "wallet:stolen")):
        with pytest.raises(RedisError, match="NOPERM"):
            codai(*command)


@pytest.mark.parametrize("command", [
    ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("CONFIG", "SET", "maxmemory", "0"), ("KEYS", "*"),
    ("SCAN", "0"), ("RANDOMKEY",), ("SHUTDOWN",), ("DEBUG", "SLEEP", "0"), ("MONITOR",), ("ACL", "LIST"),
    ("SWAPDB", "0", "1"), ("FUNCTION", "FLUSH"), ("SCRIPT", "FLUSH"), ("CLIENT", "KILL", "ID", "1"),
    ("SAVE",), ("BGREWRITEAOF",), ("INFO",), ("REPLICAOF", "NO", "ONE"),
])
def test_a_service_cannot_run_dangerous_commands(redis: Redis, redis_passwords: dict[str, str],
                                                 command: tuple[str, ...]):
    wallet = redis.client("wallet", redis_passwords["wallet"])
    # DEBUG is also off in the server's configuration, which answers before the ACL does.
    with pytest.raises(RedisError, match=r"NOPERM|DEBUG command not allowed"):
        wallet(*command)


def test_the_default_user_is_refused(redis: Redis):
    anonymous = redis.client()
    with pytest.raises(RedisError, match="NOAUTH"):
        anonymous("GET", "codai:session:1")
    for password in ("", "nopass", "default"):
        with pytest.raises(RedisError, match="WRONGPASS"):
            anonymous("AUTH", "default", password)
        with pytest.raises(RedisError, match="WRONGPASS"):
            anonymous("AUTH", password or "x")


def test_exporter_and_probe_users_read_no_keys(redis: Redis, redis_passwords: dict[str, str]):
    exporter = redis.client(acl.EXPORTER_USER, redis_passwords[acl.EXPORTER_USER])
    assert "redis_version" in exporter("INFO")
    assert exporter("CONFIG", "GET", "maxmemory")
    for command in (("GET", "codai:session:1"), ("CLIENT", "KILL", "ID", "1"), ("CLIENT", "PAUSE", "10"),
                    ("CONFIG", "SET", "maxmemory", "0"), ("FLUSHALL",)):
        with pytest.raises(RedisError, match="NOPERM"):
            exporter(*command)
    probe = redis.client(acl.HEALTHCHECK_USER, redis_passwords[acl.HEALTHCHECK_USER])
    assert probe("PING") == "PONG"
    with pytest.raises(RedisError, match="NOPERM"):
        probe("GET", "codai:session:1")


def test_the_server_runs_the_generated_configuration(redis_with_acl_file: Redis, redis_passwords: dict[str, str]):
    admin_view = redis_with_acl_file.client(acl.EXPORTER_USER, redis_passwords[acl.EXPORTER_USER])
    config = dict(zip(*[iter(admin_view("CONFIG", "GET", "*"))] * 2, strict=True))
    assert (config["appendonly"], config["appendfsync"], config["save"]) == ("yes", "everysec", "")
    assert config["maxmemory"] == str(256 * 2**20 * 80 // 100) and config["maxmemory-policy"] == "volatile-lru"
    assert config["protected-mode"] == "yes"


def test_data_survives_a_restart_through_the_append_only_file(redis_binary: str, redis_passwords: dict[str, str],
                                                               tmp_path: Path):
    (tmp_path / "users.acl").write_text(acl.acl_file(users(), redis_passwords))
    server = Redis(redis_binary, tmp_path, free_port(), acl_file=tmp_path / "users.acl")
    server.start()
    try:
        assert server.client("codai", redis_passwords["codai"])("SET", "codai:kept", "yes") == "OK"
        server.stop()
        assert list((tmp_path / "data" / "appendonlydir").iterdir())
        server.start()
        assert server.client("codai", redis_passwords["codai"])("GET", "codai:kept") == "yes"
    finally:
        server.stop()
