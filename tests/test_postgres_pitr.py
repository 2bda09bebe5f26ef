"""Point-in-time recovery as CloudNativePG does it, with Barman Cloud, on real servers.

A PostgreSQL server archives its WAL with ``barman-cloud-wal-archive`` to moto's S3-compatible
server on loopback and gets a base backup with ``barman-cloud-backup``; rows are written before
and after a time noted on the server's clock. Then the workstation drill of
docs/restore-postgres.md ("Point-in-time recovery (CloudNativePG, Barman Cloud)") runs word for
word with bash, its placeholders set through the environment, and the recovered copy must hold
exactly the rows written before that time.

As in tests/test_data_servers.py the servers run as ``nobody`` when the tests run as root; the
barman-cloud commands run under the server's account too (``archive_command``,
``restore_command``, the drill), through a copy of barman and its dependencies that the account
can read (``barman_commands``). Every process is stopped by its PID in the fixtures' finalizers.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, in_ci, require_tool
from tests.test_data_servers import free_port, postgres_bin, private_dir, server_account
from tools.crd_schemas import load_crd_schemas, validate_objects

pytestmark = pytest.mark.realtool

ADMIN = "postgres"
#: The Cluster's ``serverName`` and the folder under the bucket (``destinationPath`` s3://<bucket>/postgres).
SERVER = "postgres"
FOLDER = "postgres"
DOC = ROOT / "docs" / "restore-postgres.md"
SECTION = "## Point-in-time recovery (CloudNativePG, Barman Cloud)"
PLACEHOLDERS = ("ENDPOINT", "DESTINATION", "SERVER", "TARGET_TIME", "PGDATA_NEW", "PORT_NEW")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "codai-drill", "AWS_SECRET_ACCESS_KEY": "codai-drill-secret",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
BEFORE = [(1, "before"), (2, "before"), (3, "before")]


def missing(message: str) -> NoReturn:
    """As ``require_tool``: a skip locally, a failure under CI=true."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_module(name: str) -> ModuleType:
    """A Python package of requirements-dev.txt."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"{name} is not installed (run `make test`, which installs requirements-dev.txt)")


Account = tuple[int, int] | None


def run_as(account: Account, command: list[str], env: Mapping[str, str], cwd: Path,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs ``command`` as the server's account; the caller looks at the exit status."""
    kwargs: dict[str, Any] = {}
    if account:
        kwargs = {"user": account[0], "group": account[1], "extra_groups": []}
    return subprocess.run(command, check=False, capture_output=True, text=True, env=dict(env), cwd=cwd,
                          timeout=timeout, **kwargs)


def wait_for_port(port: int, alive: Any, describe: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if not alive() or time.monotonic() > deadline:
                raise AssertionError(describe()) from None
            time.sleep(0.1)


def stop_pid(pid: int, first: signal.Signals, gone: Any, seconds: float = 15) -> None:
    """Sends ``first`` to ``pid``, then SIGKILL if it has not stopped in time."""
    try:
        os.kill(pid, first)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + seconds
    while not gone():
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def stop_postmaster(data: Path) -> None:
    """Immediate shutdown of the server of ``data``, by the PID of its postmaster.pid."""
    pid_file = data / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return

    def gone() -> bool:
        # The postmaster removes its pid file last; a zombie left for a container's init counts as gone.
        if not pid_file.exists():
            return True
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
        except (OSError, IndexError):
            return True

    stop_pid(pid, signal.SIGQUIT, gone)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"({path}: {error})"


# --- the barman-cloud commands as the server's account can run them ----------------------------------


def distributions(requirement: str) -> list[importlib.metadata.Distribution]:
    """``requirement`` and everything it requires, as installed."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [Requirement(requirement)]
    while pending:
        wanted = pending.pop()
        key = canonicalize_name(wanted.name)
        if key in found:
            continue
        found[key] = importlib.metadata.distribution(wanted.name)
        extras = wanted.extras or {""}
        for line in found[key].requires or []:
            dependency = Requirement(line)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                pending.append(dependency)
    return list(found.values())


def interpreter_for(account: tuple[int, int], folder: Path) -> str:
    """A Python of this minor version the account can run (a root-only pyenv's is not one)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if not Path(candidate).is_file():
            continue
        try:
            probe = run_as(account, [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           {"PATH": "/usr/bin:/bin"}, folder)
        except PermissionError:  # under a folder the account cannot enter
            continue
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    missing(f"no python{version} that uid {account[0]} can run (tried {', '.join(candidates)})")


def barman_commands(account: Account, folder: Path) -> Path:
    """Folder of the barman-cloud-* commands for the server's ``PATH``.

    Running as ourselves: the virtualenv's own. As root, the server's account cannot reach a
    virtualenv built on an interpreter under /root: its commands are written anew for a Python
    the account can run, over a copy of barman[cloud] and its dependencies.
    """
    scripts = Path(sysconfig.get_path("scripts"))
    for name in ("barman-cloud-wal-archive", "barman-cloud-backup", "barman-cloud-restore",
                 "barman-cloud-wal-restore"):
        require_tool(name, str(scripts))
    if account is None:
        return scripts
    python = interpreter_for(account, folder)
    lib, bin_dir = folder / "lib", folder / "bin"
    for dist in distributions("barman[cloud]"):
        base = Path(str(dist.locate_file("")))
        for entry in dist.files or []:
            if ".." in entry.parts:  # the virtualenv's own bin/ scripts
                continue
            target = lib / entry
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base / entry, target)
    bin_dir.mkdir()
    barman = importlib.metadata.distribution("barman")
    for point in barman.entry_points:
        if point.group == "console_scripts" and point.name.startswith("barman-cloud-"):
            script = bin_dir / point.name
            script.write_text(f"#!{python} -I\nimport sys\nsys.path.insert(0, {str(lib)!r})\n"
                              f"from {point.module} import {point.attr}\nsys.exit({point.attr}())\n")
            script.chmod(0o755)
    return bin_dir


# --- moto's S3 server ---------------------------------------------------------------------------------


@dataclass
class ObjectStore:
    endpoint: str
    bucket: str
    client: Any

    def keys(self, prefix: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]


@pytest.fixture(scope="module")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """moto's S3 server on a free loopback port, with an empty bucket."""
    boto3 = require_module("boto3")
    if importlib.util.find_spec("moto") is None:  # the server runs in a process of its own
        missing("moto is not installed (run `make test`, which installs requirements-dev.txt)")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS})
    try:
        wait_for_port(port, lambda: process.poll() is None, lambda: tail(log))
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
                              aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        bucket = f"codai-pitr-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        yield ObjectStore(endpoint, bucket, client)
    finally:
        stop_pid(process.pid, signal.SIGTERM, lambda: process.poll() is not None)
        process.wait()


# --- the source server -------------------------------------------------------------------------------


@dataclass
class Source:
    """The archiving server, and what the drill needs to know about it."""

    bin: Path
    root: Path
    port: int
    account: Account
    env: dict[str, str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def run(self, *command: str, timeout: float = 120) -> str:
        result = run_as(self.account, list(command), self.env, self.root, timeout)
        if result.returncode != 0:
            raise AssertionError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                                 f"server log:\n{tail(self.root / 'server.log')}")
        return result.stdout

    def psql(self, query: str) -> str:
        return self.run(str(self.bin / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
                        "-p", str(self.port), "-U", ADMIN, "-d", "postgres", "-c", query).strip()

    def switch_and_wait_archived(self, seconds: float = 30) -> str:
        """Closes the current WAL segment and waits until the archiver has shipped it."""
        segment = self.psql("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + seconds
        while True:
            archived, failed = self.psql("SELECT coalesce(last_archived_wal, ''), failed_count "
                                         "FROM pg_stat_archiver").split("|")
            if archived >= segment:
                return segment
            if time.monotonic() > deadline:
                raise AssertionError(f"{segment} not archived (last {archived!r}, {failed} failures):\n"
                                     f"{tail(self.root / 'server.log')}")
            time.sleep(0.1)


def server_env(commands: Path, pg_bin: Path, home: Path) -> dict[str, str]:
    """The environment of the server's account: the commands, the bucket's credentials, nothing else."""
    return {"PATH": f"{commands}:{pg_bin}:/usr/bin:/bin", "HOME": str(home), "LANG": "C", **CREDENTIALS}


@pytest.fixture(scope="module")
def account() -> Account:
    return server_account()


@pytest.fixture(scope="module")
def commands(account: Account) -> Iterator[Path]:
    folder = private_dir("codai-barman-", account)
    try:
        yield barman_commands(account, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def source(object_store: ObjectStore, commands: Path, account: Account) -> Iterator[Source]:
    """A server archiving every WAL segment to the bucket with barman-cloud-wal-archive (1 MB segments)."""
    pg_bin = postgres_bin()
    root = private_dir("codai-pitr-", account)
    server = Source(pg_bin, root, free_port(), account, server_env(commands, pg_bin, root))
    try:
        server.socket_dir.mkdir()
        if account:
            os.chown(server.socket_dir, *account)
        server.run(str(pg_bin / "initdb"), "-D", "data", "-U", ADMIN, "--no-sync", "-E", "UTF8", "--locale=C",
                   "--auth-local=trust", "--auth-host=reject", "--wal-segsize=1")
        destination = f"s3://{object_store.bucket}/{FOLDER}"
        with (server.data / "postgresql.conf").open("a") as conf:  # stays the account's file
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {server.port}\n"
                f"unix_socket_directories = '{server.socket_dir}'\nfsync = off\n"
                "wal_level = replica\narchive_mode = on\narchive_timeout = 5\n"
                f"archive_command = 'barman-cloud-wal-archive --endpoint-url {object_store.endpoint} "
                f"{destination} {SERVER} %p'\n"
            )
        server.run(str(pg_bin / "pg_ctl"), "-D", "data", "-l", "server.log", "-w", "-t", "30", "start")
        yield server
    finally:
        stop_postmaster(server.data)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class History:
    target_time: str
    source_rows: str


@pytest.fixture(scope="module")
def history(source: Source, object_store: ObjectStore) -> History:
    """A base backup, rows before the noted time, rows after it; every segment archived."""
    source.run("barman-cloud-backup", "--endpoint-url", object_store.endpoint, "--immediate-checkpoint",
               "-h", str(source.socket_dir), "-p", str(source.port), "-U", ADMIN,
               f"s3://{object_store.bucket}/{FOLDER}", SERVER)
    rows = ", ".join(f"({n}, '{note}')" for n, note in BEFORE)
    source.psql(f"CREATE TABLE drill (id int PRIMARY KEY, note text); INSERT INTO drill VALUES {rows}")
    source.switch_and_wait_archived()  # the segment holding that commit is in the bucket
    time.sleep(0.3)
    target_time = source.psql("SELECT clock_timestamp()")
    time.sleep(0.3)
    source.psql("INSERT INTO drill VALUES (4, 'after'), (5, 'after'); UPDATE drill SET note = 'changed' WHERE id = 1")
    source.psql("DELETE FROM drill WHERE id = 2")
    source.switch_and_wait_archived()  # and the later commits, which tell recovery where to stop
    return History(target_time, source.psql("SELECT string_agg(id || ':' || note, ' ' ORDER BY id) FROM drill"))


# --- the drill of docs/restore-postgres.md ------------------------------------------------------------


def drill_commands() -> str:
    """The shell block of the doc's point-in-time section, as written there."""
    text = DOC.read_text()
    assert SECTION in text.splitlines(), f"docs/restore-postgres.md has no heading {SECTION!r}"
    section = re.split(r"^## ", text.split(SECTION + "\n", 1)[1], flags=re.MULTILINE)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1, f"{SECTION!r} must hold exactly one ```sh block (the workstation drill)"
    return str(blocks[0])


def test_the_drill_section_names_its_placeholders_and_the_barman_cloud_commands():
    commands = drill_commands()
    for name in PLACEHOLDERS:
        assert f"${name}" in commands, f"the drill does not use ${name}"
    for command in ("barman-cloud-restore", "barman-cloud-wal-restore", "recovery.signal",
                    "recovery_target_time", "recovery_target_action = 'promote'"):
        assert command in commands
    assert "tests/test_postgres_pitr.py" in DOC.read_text().split(SECTION, 1)[1]


def test_the_documented_cluster_recovers_from_the_object_store_and_fits_the_vendored_crd():
    """The manifest of the section, as `kubectl apply -f` would send it: valid for CloudNativePG's CRD."""
    section = re.split(r"^## ", DOC.read_text().split(SECTION + "\n", 1)[1], flags=re.MULTILINE)[0]
    blocks = re.findall(r"^```yaml\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1, f"{SECTION!r} must hold exactly one ```yaml block (the recovery Cluster)"
    cluster = yaml.safe_load(blocks[0])
    report = validate_objects([cluster], ["1.30", "1.34"], load_crd_schemas())
    assert (report.errors, report.custom) == ([], 1)
    recovery = cluster["spec"]["bootstrap"]["recovery"]
    assert recovery["recoveryTarget"]["targetTime"]
    [origin] = [c for c in cluster["spec"]["externalClusters"] if c["name"] == recovery["source"]]
    store = origin["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://") and store["serverName"] == "postgres-cluster"
    # A new cluster: it must not archive into the folder it recovers from.
    assert "backup" not in cluster["spec"] and cluster["metadata"]["name"] != "postgres-cluster"


def test_the_documented_drill_recovers_exactly_the_rows_before_the_target_time(
    source: Source, history: History, object_store: ObjectStore, commands: Path, account: Account
):
    assert history.source_rows == "1:changed 3:before 4:after 5:after"
    root = private_dir("codai-pitr-new-", account)
    pgdata_new, port_new = root / "data", free_port()
    try:
        env = {**server_env(commands, source.bin, root), "ENDPOINT": object_store.endpoint,
               "DESTINATION": f"s3://{object_store.bucket}/{FOLDER}", "SERVER": SERVER,
               "TARGET_TIME": history.target_time,
               "PGDATA_NEW": str(pgdata_new), "PORT_NEW": str(port_new)}
        drill = run_as(account, ["bash", "-euo", "pipefail", "-c", drill_commands()], env, root, timeout=180)
        assert drill.returncode == 0, (f"the drill failed ({drill.returncode}):\n{drill.stdout}\n{drill.stderr}\n"
                                       f"recovery.log:\n{tail(pgdata_new / 'recovery.log')}")
        in_recovery, replayed = drill.stdout.strip().splitlines()[-1].split("|")
        assert in_recovery == "f"  # promoted at the target

        def psql(query: str) -> str:
            result = run_as(account, [str(source.bin / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
                                      "-h", str(pgdata_new), "-p", str(port_new), "-U", ADMIN, "-d", "postgres",
                                      "-c", query], env, root)
            assert result.returncode == 0, result.stderr
            return result.stdout.strip()

        assert psql("SELECT id || ':' || note FROM drill ORDER BY id").split() == [f"{n}:{s}" for n, s in BEFORE]
        # The last transaction kept is the first rows' commit: before the target, and nothing after it.
        assert psql(f"SELECT '{replayed}'::timestamptz <= '{history.target_time}'::timestamptz") == "t"
        log = (pgdata_new / "recovery.log").read_text()
        assert "recovery stopping before commit of transaction" in log
        assert "selected new timeline ID: 2" in log
        # The copy archived nothing into the source's folder (no timeline 2 history there).
        assert not [key for key in object_store.keys(f"{FOLDER}/{SERVER}/wals/") if "00000002" in key]
    finally:
        stop_postmaster(pgdata_new)
        shutil.rmtree(root, ignore_errors=True)
