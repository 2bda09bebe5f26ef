"""Redis replication under Sentinel, from the generated files, on real servers; and the generators' text.

Three ``redis-server`` and three ``redis-sentinel`` processes on loopback, free ports, a temp dir,
configured only from ``sentinel_files`` and ``acl``. The master is killed (SIGKILL); Sentinel must
promote a replica in time, and a client that knows only what a service is handed (sentinels,
master name, its user and password) must keep writing, through ``redis-cli``, without losing a
write it saw acknowledged. Under CI=true a missing binary fails (``require_tool``).

The guarantee asserted: a write counts as acknowledged when the master answered the SET and
``WAIT`` reported it on every replica the sentinels list as healthy. Such a write survives the
master's death whichever replica Sentinel promotes. (Redis replicates asynchronously: a write the
master acknowledged alone may be lost; ``min-replicas-to-write`` bounds that for a cut-off master.)
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.data import acl, config_files, sentinel_files
from components.data.sentinel_files import Address, SentinelGroup
from settings.quantities import Memory
from tests.conftest import require_tool
from tests.test_data_servers import RedisError, RespClient, free_port

SERVICES = ("codai", "wallet")
MASTER = "codai"
DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS = 1000, 5000
HOST = "127.0.0.1"
#: How the servers and sentinels name each other: a host name, as the pods do (their DNS names), so that
#: Sentinel's resolve-hostnames/announce-hostnames path is the one exercised.
NAME = "localhost"


def wait_for(what: str, check: Callable[[], bool], seconds: float, logs: Callable[[], str] = lambda: "") -> float:
    """Polls ``check`` until it holds; returns when it first held (monotonic), or fails naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return time.monotonic()
        except (OSError, RedisError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s\n{logs()}")
        time.sleep(0.05)


# --- processes --------------------------------------------------------------------------------------


@dataclass
class Node:
    """One server or sentinel: its directory, its process, its log."""

    command: list[str]
    root: Path
    address: Address
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.root / "log").open("wb")
        self.process = subprocess.Popen(self.command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)

    @property
    def log(self) -> str:
        return f"--- {self.root.name} ---\n" + (self.root / "log").read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """By PID: terminate, then kill if it lingers."""
        if self.alive():
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def client(self, user: str, password: str) -> RespClient:
        client = RespClient(self.address.port)
        assert client("AUTH", user, password) == "OK"
        return client

    def ask(self, user: str, password: str, *command: str) -> object:
        client = self.client(user, password)
        try:
            return client(*command)
        finally:
            client.close()


@dataclass
class Deployment:
    group: SentinelGroup
    passwords: dict[str, str]
    redis: list[Node] = field(default_factory=list)
    sentinels: list[Node] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(node.log for node in (*self.redis, *self.sentinels))

    def info(self, node: Node, section: str) -> str:
        """As Sentinel sees it (its user may run INFO and ROLE)."""
        password = self.passwords[sentinel_files.SENTINEL_USER]
        return str(node.ask(sentinel_files.SENTINEL_USER, password, "INFO", section))

    def role(self, node: Node) -> str:
        answer = node.ask(sentinel_files.SENTINEL_USER, self.passwords[sentinel_files.SENTINEL_USER], "ROLE")
        assert isinstance(answer, list)
        return str(answer[0])

    def master_seen_by(self, sentinel: Node) -> Address:
        answer = sentinel.ask("wallet", self.passwords["wallet"], "SENTINEL", "get-master-addr-by-name", MASTER)
        assert isinstance(answer, list)
        return Address(answer[0], int(answer[1]))

    def node_at(self, address: Address) -> Node:
        return next(node for node in self.redis if node.address == address)


def write_redis_files(deployment: Deployment, index: int, root: Path) -> Path:
    """redis.conf: the generated server configuration plus the generated replication lines."""
    group, passwords = deployment.group, deployment.passwords
    users = [*(acl.service_user(s) for s in SERVICES), acl.default_user(), *sentinel_files.server_users()]
    (root / "users.acl").write_text(acl.acl_file(users, passwords))
    (root / "data").mkdir(exist_ok=True)  # a restart keeps the data, as a pod keeps its volume
    paths = config_files.RedisPaths(data_dir=str(root / "data"), acl_file=str(root / "users.acl"),
                                    port=group.instances[index].port, bind=HOST)
    conf = config_files.redis_conf(paths, memory_limit=Memory.parse("64Mi"), maxmemory_percent=80,
                                   eviction_policy="noeviction")
    conf += sentinel_files.replication_conf(group, index, passwords, announce_host=NAME)
    (root / "redis.conf").write_text(conf)
    return root / "redis.conf"


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """Three servers replicating from the first, then three sentinels; every process stopped at the end."""
    server, sentinel = require_tool("redis-server"), require_tool("redis-sentinel")
    require_tool("redis-cli")
    top = Path(tempfile.mkdtemp(prefix="codai-sentinel-"))
    group = SentinelGroup(MASTER, tuple(Address(NAME, free_port()) for _ in range(3)),
                          tuple(Address(NAME, free_port()) for _ in range(3)), quorum=2,
                          down_after_ms=DOWN_AFTER_MS, failover_timeout_ms=FAILOVER_TIMEOUT_MS)
    names = (*SERVICES, sentinel_files.REPLICATION_USER, sentinel_files.SENTINEL_USER, acl.EXPORTER_USER)
    found = Deployment(group, {name: f"{name}-{os.urandom(12).hex()}" for name in names})
    try:
        for index, address in enumerate(group.instances):
            root = top / f"redis-{index}"
            root.mkdir()
            node = Node([server, str(write_redis_files(found, index, root))], root, address)
            found.redis.append(node)
            node.start()
        wait_for("both replicas in sync", lambda: all("master_link_status:up" in found.info(n, "replication")
                                                     for n in found.redis[1:]), 10, found.logs)
        for index, address in enumerate(group.sentinels):
            root = top / f"sentinel-{index}"
            root.mkdir()
            conf = sentinel_files.sentinel_conf(group, index, found.passwords, SERVICES, data_dir=str(root), bind=HOST,
                                                observers=[sentinel_files.exporter_user()])
            (root / "sentinel.conf").write_text(conf)
            node = Node([sentinel, str(root / "sentinel.conf")], root, address)
            found.sentinels.append(node)
            node.start()
        wait_for("sentinels agree on the master, its replicas and each other", lambda: all_agree(found), 15, found.logs)
        yield found
    finally:
        for node in (*found.sentinels, *found.redis):
            node.stop()
        shutil.rmtree(top, ignore_errors=True)


def all_agree(deployment: Deployment) -> bool:
    for sentinel in deployment.sentinels:
        state = sentinel.ask("wallet", deployment.passwords["wallet"], "SENTINEL", "master", MASTER)
        assert isinstance(state, list)
        info = dict(zip(state[::2], state[1::2], strict=True))
        if (info["flags"], info["num-slaves"], info["num-other-sentinels"]) != ("master", "2", "2"):
            return False
    return {deployment.master_seen_by(s) for s in deployment.sentinels} == {deployment.group.master}


# --- a client that knows only what a service is handed --------------------------------------------------


@dataclass
class ServiceClient:
    """A service's client: ``client_env`` and its password, ``redis-cli`` for every call."""

    env: dict[str, str]
    password: str

    def cli(self, address: str, *command: str, stdin: str | None = None) -> list[str]:
        host, port = address.rsplit(":", 1)
        result = subprocess.run(["redis-cli", "-e", "--no-auth-warning", "-h", host, "-p", port, "--user",
                                 self.env["REDIS_USERNAME"], *command], input=stdin, capture_output=True, text=True,
                                check=False, timeout=10, env={**os.environ, "REDISCLI_AUTH": self.password})
        # -e: an error reply exits 1 (commands read from stdin print it and exit 0: see ``write``).
        if result.returncode != 0:
            raise RedisError((result.stdout + result.stderr).strip())
        return result.stdout.splitlines()

    def sentinel(self, *command: str) -> list[str]:
        """The first sentinel that answers."""
        errors = []
        for address in self.env["REDIS_SENTINELS"].split(","):
            try:
                return self.cli(address, "SENTINEL", *command)
            except RedisError as error:
                errors.append(str(error))
        raise RedisError("; ".join(errors))

    def master(self) -> str:
        host, port = self.sentinel("get-master-addr-by-name", self.env["REDIS_MASTER_NAME"])
        return f"{host}:{port}"

    def healthy_replicas(self) -> int:
        lines = self.sentinel("replicas", self.env["REDIS_MASTER_NAME"])
        return sum(1 for key, value in itertools.pairwise(lines) if key == "flags" and value == "slave")

    def write(self, key: str, value: str) -> bool:
        """SET then WAIT for every healthy replica, on one connection; True when both succeeded."""
        try:
            replicas = self.healthy_replicas()
            answer = self.cli(self.master(), stdin=f"SET {key} {value}\nWAIT {replicas} 1000\n")
        except RedisError:
            return False
        return len(answer) == 2 and answer[0] == "OK" and answer[1].isdigit() and int(answer[1]) >= replicas > 0

    def read(self, key: str) -> str:
        return self.cli(self.master(), "GET", key)[0]


class Writer:
    """Writes codai:during:<n> one after the other in a thread, retrying each until acknowledged."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client
        self.acknowledged: dict[str, float] = {}
        self.failed_attempts = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            key = f"codai:during:{n}"
            if self.client.write(key, str(n)):
                self.acknowledged[key] = time.monotonic()
                n += 1
            else:
                self.failed_attempts += 1
                time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(15)


@dataclass
class Failover:
    old_master: Address
    new_master: Address
    killed_at: float
    promoted_after: float
    writer: Writer
    before: list[str]

    @property
    def writes_paused(self) -> float:
        """The longest the client went without an acknowledged write: the outage it saw."""
        times = sorted(self.writer.acknowledged.values())
        return max(later - earlier for earlier, later in itertools.pairwise(times))


@pytest.fixture(scope="module")
def failover(deployment: Deployment) -> Failover:
    """Writes, kills the master while a client keeps writing, waits for the promotion, writes again."""
    env = sentinel_files.client_env(sentinel_files.discovery_for(deployment.group, "codai"))
    client = ServiceClient(env, deployment.passwords["codai"])
    before = [f"codai:before:{n}" for n in range(20)]
    assert all(client.write(key, "kept") for key in before)
    writer = Writer(client)
    writer.thread.start()
    try:
        wait_for("the client writes", lambda: len(writer.acknowledged) >= 5, 10)
        old = deployment.group.master
        victim = deployment.node_at(old)
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.process.wait(5)
        candidates = [node for node in deployment.redis if node is not victim]
        promoted_at = wait_for("a replica promoted", lambda: any(deployment.role(n) == "master" for n in candidates),
                               15, deployment.logs)
        new = next(n.address for n in candidates if deployment.role(n) == "master")
        wait_for("the sentinels agree on the new master",
                 lambda: {deployment.master_seen_by(s) for s in deployment.sentinels} == {new}, 10, deployment.logs)
        wait_for("the client writes after the failover",
                 lambda: sum(1 for t in writer.acknowledged.values() if t > promoted_at) >= 5, 15, deployment.logs)
    finally:
        writer.stop()
    return Failover(old, new, killed_at, promoted_at - killed_at, writer, before)


def test_the_sentinels_agree_on_the_first_instance_as_master(deployment: Deployment):
    assert all_agree(deployment)
    assert deployment.role(deployment.redis[0]) == "master"


def test_a_replica_is_promoted_within_down_after_plus_failover_timeout(failover: Failover):
    assert failover.new_master != failover.old_master
    assert failover.promoted_after < (DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS) / 1000
    print(f"\npromoted {failover.promoted_after:.2f} s after SIGKILL; writes paused {failover.writes_paused:.2f} s; "
          f"{len(failover.writer.acknowledged)} acknowledged, {failover.writer.failed_attempts} attempts retried")


def test_no_acknowledged_write_is_lost(deployment: Deployment, failover: Failover):
    """Before, during (retried by the client) and after the failover, read back on the new master."""
    client = ServiceClient(sentinel_files.client_env(sentinel_files.discovery_for(deployment.group, "codai")),
                           deployment.passwords["codai"])
    assert client.master() == str(failover.new_master)
    assert client.write("codai:after", "yes")
    assert client.read("codai:after") == "yes"
    assert [client.read(key) for key in failover.before] == ["kept"] * len(failover.before)
    during = failover.writer.acknowledged
    assert any(t > failover.killed_at for t in during.values())
    assert {key: client.read(key) for key in during} == {key: key.rsplit(":", 1)[1] for key in during}


def test_sentinel_rewrote_the_survivors_configuration_with_its_own_user(deployment: Deployment, failover: Failover):
    """MULTI, SLAVEOF and CONFIG REWRITE ran under the sentinel user: a restart keeps the new roles."""
    files = {node.address: (node.root / "redis.conf").read_text() for node in deployment.redis}
    assert "replicaof" not in files[failover.new_master]
    (replica,) = (a for a in deployment.group.instances if a not in (failover.old_master, failover.new_master))
    assert f"replicaof {failover.new_master.host} {failover.new_master.port}" in files[replica]
    # CONFIG REWRITE may quote values: masteruser "replication".
    for address in (replica, failover.new_master):
        assert re.search(r'^masteruser "?replication"?$', files[address], re.MULTILINE)


def test_users_stay_confined_on_the_new_master(deployment: Deployment, failover: Failover):
    for service, other in (("codai", "wallet"), ("wallet", "codai")):
        client = ServiceClient(sentinel_files.client_env(sentinel_files.discovery_for(deployment.group, service)),
                               deployment.passwords[service])
        master = client.master()
        assert client.write(f"{service}:mine", "1")
        for command in (("FLUSHALL",), ("SET", f"{other}:x", "1"), ("GET", f"{other}:mine"), ("SET", "x", "1"),
                        ("REPLICAOF", "NO", "ONE"), ("CONFIG", "SET", "masteruser", service)):
            with pytest.raises(RedisError, match="NOPERM"):
                client.cli(master, *command)


def test_a_service_can_only_ask_the_sentinels_where_the_master_is(deployment: Deployment, failover: Failover):
    sentinel = deployment.sentinels[0]
    codai = sentinel.client("codai", deployment.passwords["codai"])
    try:
        for command in (("SENTINEL", "FAILOVER", MASTER), ("SENTINEL", "SET", MASTER, "quorum", "1"),
                        ("SENTINEL", "RESET", "*"), ("SENTINEL", "REMOVE", MASTER), ("SHUTDOWN",)):
            with pytest.raises(RedisError, match="NOPERM"):
                codai(*command)
    finally:
        codai.close()
    anonymous = RespClient(sentinel.address.port)
    try:
        with pytest.raises(RedisError, match="NOAUTH"):
            anonymous("SENTINEL", "get-master-addr-by-name", MASTER)
    finally:
        anonymous.close()


def test_the_exporter_reads_the_quorum_and_changes_nothing(deployment: Deployment, failover: Failover):
    """What redis_exporter asks a sentinel (its quorum alert reads CKQUORUM), and nothing that acts."""
    exporter = deployment.sentinels[0].client(acl.EXPORTER_USER, deployment.passwords[acl.EXPORTER_USER])
    try:
        assert str(exporter("SENTINEL", "CKQUORUM", MASTER)).startswith("OK 3 usable Sentinels")
        assert "# Sentinel" in str(exporter("INFO"))
        for query in (("SENTINEL", "MASTERS"), ("SENTINEL", "SENTINELS", MASTER), ("SENTINEL", "REPLICAS", MASTER)):
            assert isinstance(exporter(*query), list), query
        for command in (("SENTINEL", "FAILOVER", MASTER), ("SENTINEL", "SET", MASTER, "quorum", "1"),
                        ("SENTINEL", "RESET", "*"), ("SHUTDOWN",)):
            with pytest.raises(RedisError, match="NOPERM"):
                exporter(*command)
    finally:
        exporter.close()


def test_a_restarted_old_master_and_sentinel_start_from_their_files_and_are_repointed(
        deployment: Deployment, failover: Failover):
    """What a pod does after a failover: it starts again from the generated files (the old master's say it
    is master, its sentinel's that the old master is). Refused writes until the sentinels repoint it."""
    old, new = deployment.node_at(failover.old_master), deployment.node_at(failover.new_master)
    index = deployment.redis.index(old)
    write_redis_files(deployment, index, old.root)
    old.start()
    codai = ServiceClient(sentinel_files.client_env(sentinel_files.discovery_for(deployment.group, "codai")),
                          deployment.passwords["codai"])
    wait_for("the old master answers", lambda: deployment.role(old) in ("master", "slave"), 10, deployment.logs)
    # Whether it still thinks it is master (no replica: NOREPLICAS) or is already a replica (READONLY).
    with pytest.raises(RedisError, match=r"NOREPLICAS|READONLY"):
        codai.cli(str(old.address), "SET", "codai:stale", "lost")
    wait_for("the sentinels make the old master a replica of the new one",
             lambda: deployment.role(old) == "slave" and "master_link_status:up" in deployment.info(old, "replication")
             and f"master_port:{new.address.port}" in deployment.info(old, "replication"), 30, deployment.logs)
    sentinel = deployment.sentinels[index]
    sentinel.stop()
    conf = sentinel_files.sentinel_conf(deployment.group, index, deployment.passwords, SERVICES,
                                        data_dir=str(sentinel.root), bind=HOST,
                                        observers=[sentinel_files.exporter_user()])
    (sentinel.root / "sentinel.conf").write_text(conf)  # names the old master, as the generated file does
    sentinel.start()
    wait_for("the restarted sentinel learns the new master from the others",
             lambda: deployment.master_seen_by(sentinel) == failover.new_master, 30, deployment.logs)
    # Nothing acknowledged before or during the failover is missing on the old master, now a replica.
    replica = old.client("codai", deployment.passwords["codai"])
    try:
        for key in [*failover.before, *failover.writer.acknowledged]:
            assert replica("GET", key) is not None, key
        assert replica("GET", "codai:stale") is None
    finally:
        replica.close()


# --- the generated text ---------------------------------------------------------------------------------


def golden_group() -> SentinelGroup:
    return SentinelGroup("codai", tuple(Address(f"redis-{n}.redis", 6379) for n in range(3)),
                         tuple(Address(f"redis-sentinel-{n}.redis-sentinel", 26379) for n in range(3)), quorum=2)


GOLDEN_PASSWORDS = {"replication": "replication-pw", "sentinel": "sentinel-pw", "codai": "codai-pw"}


def test_a_replica_gets_exactly_these_replication_lines():
    text = sentinel_files.replication_conf(golden_group(), 1, GOLDEN_PASSWORDS, announce_host="redis-1.redis")
    assert text == (
        "# Replication, generated by components/data/sentinel_files.py.\n"
        "replicaof redis-0.redis 6379\n"
        "masteruser replication\n"
        "masterauth replication-pw\n"
        "replica-read-only yes\n"
        "replica-announce-ip redis-1.redis\n"
        "repl-diskless-sync-max-replicas 2\n"
        "min-replicas-to-write 1\n"
        "min-replicas-max-lag 10\n")


def test_the_first_instance_and_a_lone_instance_replicate_from_no_one():
    first = sentinel_files.replication_conf(golden_group(), 0, GOLDEN_PASSWORDS)
    assert first == (
        "# Replication, generated by components/data/sentinel_files.py.\n"
        "masteruser replication\n"
        "masterauth replication-pw\n"
        "replica-read-only yes\n"
        "repl-diskless-sync-max-replicas 2\n"
        "min-replicas-to-write 1\n"
        "min-replicas-max-lag 10\n")
    lone = SentinelGroup("codai", (Address("redis-0.redis", 6379),), (Address("s", 26379),), quorum=1)
    assert "replicaof" not in sentinel_files.replication_conf(lone, 0, GOLDEN_PASSWORDS)
    assert "min-replicas" not in sentinel_files.replication_conf(lone, 0, GOLDEN_PASSWORDS)


def test_the_replication_and_sentinel_users_on_redis_are_exactly_these():
    text = acl.acl_file(sentinel_files.server_users(), GOLDEN_PASSWORDS)
    digest = {name: hashlib.sha256(value.encode()).hexdigest() for name, value in GOLDEN_PASSWORDS.items()}
    assert text == (
        f"user replication reset on #{digest['replication']} -@all +psync +replconf +ping\n"
        f"user sentinel reset on #{digest['sentinel']} &__sentinel__:hello -@all +multi +exec +slaveof +ping "
        "+subscribe +publish +info +role +config|rewrite +client|setname +client|kill +script|kill\n")


def test_a_sentinel_conf_is_exactly_this():
    text = sentinel_files.sentinel_conf(golden_group(), 2, GOLDEN_PASSWORDS, ["codai"], data_dir="/data")
    digest = {name: hashlib.sha256(value.encode()).hexdigest() for name, value in GOLDEN_PASSWORDS.items()}
    assert text == (
        "# Generated by components/data/sentinel_files.py; Sentinel rewrites it at run time.\n"
        "bind * -::*\n"
        "port 26379\n"
        "dir /data\n"
        "daemonize no\n"
        'logfile ""\n'
        "protected-mode no\n"
        "sentinel resolve-hostnames yes\n"
        "sentinel announce-hostnames yes\n"
        "sentinel announce-ip redis-sentinel-2.redis-sentinel\n"
        "sentinel announce-port 26379\n"
        "sentinel sentinel-user sentinel\n"
        "sentinel sentinel-pass sentinel-pw\n"
        "sentinel deny-scripts-reconfig yes\n"
        "sentinel monitor codai redis-0.redis 6379 2\n"
        "sentinel auth-user codai sentinel\n"
        "sentinel auth-pass codai sentinel-pw\n"
        "sentinel down-after-milliseconds codai 5000\n"
        "sentinel failover-timeout codai 60000\n"
        "sentinel parallel-syncs codai 1\n"
        f"user codai reset on #{digest['codai']} -@all &+switch-master +ping +hello +client|setname "
        "+sentinel|get-master-addr-by-name +sentinel|master +sentinel|masters +sentinel|replicas +sentinel|slaves "
        "+sentinel|sentinels +subscribe\n"
        "user default reset -@all\n"
        f"user sentinel reset on #{digest['sentinel']} &__sentinel__:hello -@all +ping +publish +client|setname "
        "+sentinel|is-master-down-by-addr\n")


def test_a_client_is_handed_the_sentinels_the_master_name_and_its_user():
    discovery = sentinel_files.discovery_for(golden_group(), "codai")
    assert sentinel_files.client_env(discovery) == {
        "REDIS_SENTINELS": "redis-sentinel-0.redis-sentinel:26379,redis-sentinel-1.redis-sentinel:26379,"
                           "redis-sentinel-2.redis-sentinel:26379",
        "REDIS_MASTER_NAME": "codai",
        "REDIS_USERNAME": "codai",
    }


@pytest.mark.parametrize(("instances", "sentinels", "quorum", "message"), [
    (3, 2, 2, "2 sentinels for 3 replicated instances: at least 3 are needed"),
    (5, 1, 1, "1 sentinels for 5 replicated instances: at least 3 are needed"),
    (2, 3, 2, "2 Redis instances: use an odd number"),
    (4, 5, 3, "4 Redis instances: use an odd number"),
    (0, 3, 2, "0 Redis instances: use an odd number"),
    (3, 3, 4, "quorum 4 with 3 sentinels: it must be between 1 and the number of sentinels"),
    (3, 3, 0, "quorum 0 with 3 sentinels"),
    (1, 1, 2, "quorum 2 with 1 sentinels"),
])
def test_a_group_without_a_majority_is_refused(instances: int, sentinels: int, quorum: int, message: str):
    with pytest.raises(ValueError, match=message):
        SentinelGroup("codai", tuple(Address(f"r{n}", 6379) for n in range(instances)),
                      tuple(Address(f"s{n}", 26379) for n in range(sentinels)), quorum=quorum)


def test_other_bad_input_is_refused():
    with pytest.raises(ValueError, match="master name 'Codai main'"):
        SentinelGroup("Codai main", (Address("r", 6379),), (Address("s", 26379),), quorum=1)
    with pytest.raises(ValueError, match="must be positive"):
        SentinelGroup("codai", (Address("r", 6379),), (Address("s", 26379),), quorum=1, down_after_ms=0)
    with pytest.raises(ValueError, match="no password for Redis user 'replication'"):
        sentinel_files.replication_conf(golden_group(), 1, {})
    with pytest.raises(ValueError, match="instance 3 of a group of 3"):
        sentinel_files.replication_conf(golden_group(), 3, GOLDEN_PASSWORDS)
    with pytest.raises(ValueError, match="no password for Redis user 'sentinel'"):
        sentinel_files.sentinel_conf(golden_group(), 0, {}, ["codai"], data_dir="/data")
