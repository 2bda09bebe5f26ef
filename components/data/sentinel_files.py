"""Redis replication under Sentinel: the replicas' and the sentinels' configuration, and what clients get.

Pure text generation, like ``config_files.py``; ``redis_replication.py`` puts it in the pods. Sentinel
is the engine: it detects a dead master, elects a replica and repoints the others. This program
writes no failover logic, only the files that let Sentinel do it with least-privilege users.

Users, composed with ``acl.py`` (whose output for the existing users does not change):

- on every Redis instance, beside the services' users: ``replication`` (what a replica runs on
  its master: PSYNC, REPLCONF, PING) and ``sentinel`` (the commands Redis 7's ACL documentation
  lists for Sentinel, with pub/sub narrowed to Sentinel's own ``__sentinel__:hello`` channel);
- on every sentinel, ``default`` off, ``sentinel`` for the other sentinels, and one user per
  service, named and keyed as on Redis, that may only ask where the master is.

A client is handed a :class:`SentinelDiscovery`, rendered by :func:`client_env` as::

    REDIS_SENTINELS=redis-sentinel-0.redis-sentinel:26379,redis-sentinel-1.redis-sentinel:26379,...
    REDIS_MASTER_NAME=codai
    REDIS_USERNAME=<service>

It asks any sentinel ``SENTINEL get-master-addr-by-name <REDIS_MASTER_NAME>``, then connects to
that address; the same user name and ``REDIS_PASSWORD`` (from its Secret, as today) log in to
both. After a failover the old address refuses writes (gone, or ``READONLY``): ask again.

The generated texts hold passwords (``masterauth``, ``sentinel auth-pass``): they go in Secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.data import acl

REPLICATION_USER = "replication"
SENTINEL_USER = "sentinel"
SENTINEL_PORT = 26379
#: Sentinels find each other by publishing on this channel of every monitored instance.
HELLO_CHANNEL = "__sentinel__:hello"

#: Redis 7's ACL documentation ("ACL rules for Sentinel and Replicas"), subcommands as listed there
#: rather than whole CONFIG and CLIENT: Sentinel rewrites the config after SLAVEOF, names its
#: connections and kills clients of a demoted master, nothing more.
SENTINEL_ALLOWED = (
    "+multi", "+exec", "+slaveof", "+ping", "+subscribe", "+publish", "+info", "+role", "+config|rewrite",
    "+client|setname", "+client|kill", "+script|kill",
)
#: What a sentinel sends another sentinel: hellos, pings and, to start a failover, its vote request.
PEER_ALLOWED = ("+ping", "+publish", "+client|setname", "+sentinel|is-master-down-by-addr")
#: Read-only Sentinel queries client libraries make to find the master (Jedis, Lettuce, go-redis,
#: redis-py), and the ``+switch-master`` event some of them subscribe to. No FAILOVER, SET, RESET.
DISCOVERY_ALLOWED = (
    "+ping", "+hello", "+client|setname", "+sentinel|get-master-addr-by-name", "+sentinel|master",
    "+sentinel|masters", "+sentinel|replicas", "+sentinel|slaves", "+sentinel|sentinels", "+subscribe",
)

#: What the metrics exporter asks a sentinel (redis_exporter notices a sentinel from INFO): the
#: masters, their replicas and sentinels, and whether a quorum could be reached (CKQUORUM).
EXPORTER_ALLOWED = (
    "+ping", "+info", "+client|setname", "+sentinel|masters", "+sentinel|master", "+sentinel|replicas",
    "+sentinel|slaves", "+sentinel|sentinels", "+sentinel|ckquorum",
)

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SentinelGroup:
    """One replicated Redis and the sentinels watching it; the first instance starts as master.

    ``quorum`` sentinels must agree the master is down before a failover starts (the election
    itself still needs a majority of all sentinels). The times are Sentinel's own settings.
    """

    master_name: str
    instances: tuple[Address, ...]
    sentinels: tuple[Address, ...]
    quorum: int
    down_after_ms: int = 5000
    failover_timeout_ms: int = 60000

    def __post_init__(self) -> None:
        count = len(self.instances)
        if not _NAME.match(self.master_name):
            raise ValueError(f"master name {self.master_name!r}: lowercase letters, digits, '-', '_'")
        if count == 0 or count % 2 == 0:
            raise ValueError(f"{count} Redis instances: use an odd number (1, or 3 and more), "
                             "so that a majority remains when one fails")
        if count > 1 and len(self.sentinels) < 3:
            raise ValueError(f"{len(self.sentinels)} sentinels for {count} replicated instances: at least 3 "
                             "are needed for a majority to survive the loss of one")
        if not 1 <= self.quorum <= len(self.sentinels):
            raise ValueError(f"quorum {self.quorum} with {len(self.sentinels)} sentinels: it must be between 1 "
                             "and the number of sentinels, or no failover can ever start")
        if min(self.down_after_ms, self.failover_timeout_ms) <= 0:
            raise ValueError("down_after_ms and failover_timeout_ms must be positive")

    @property
    def master(self) -> Address:
        return self.instances[0]


def replication_user() -> acl.AclUser:
    """A replica logs in to its master with this user: replication only, no keys, no channels."""
    return acl.AclUser(REPLICATION_USER, ("-@all", "+psync", "+replconf", "+ping"))


def sentinel_user() -> acl.AclUser:
    """Sentinel's login on every Redis instance (all of them can become master or replica)."""
    return acl.AclUser(SENTINEL_USER, (f"&{HELLO_CHANNEL}", "-@all", *SENTINEL_ALLOWED))


def server_users() -> list[acl.AclUser]:
    """The users to add to ``acl.acl_file``'s list on each instance of a replicated Redis."""
    return [replication_user(), sentinel_user()]


def replication_conf(
    group: SentinelGroup, index: int, passwords: Mapping[str, str], *, announce_host: str | None = None,
    min_replicas_to_write: int = 1,
) -> str:
    """Lines appended to ``redis_conf`` for instance ``index`` of ``group``.

    Every instance gets the replication login (after a failover any of them can be a replica);
    the ones that start as replicas also ``replicaof`` the first. ``announce_host`` is the name
    sentinels and the other replicas should use (the pod's DNS name: a pod IP changes on restart).
    ``min_replicas_to_write`` stops a master that lost all its replicas for longer than 10 s
    from accepting writes a failover elsewhere would then discard.
    """
    if not 0 <= index < len(group.instances):
        raise ValueError(f"instance {index} of a group of {len(group.instances)}")
    if not passwords.get(REPLICATION_USER):
        raise ValueError(f"no password for Redis user {REPLICATION_USER!r}")
    lines: list[tuple[str, str]] = []
    if index > 0:
        lines.append(("replicaof", f"{group.master.host} {group.master.port}"))
    lines += [("masteruser", REPLICATION_USER), ("masterauth", passwords[REPLICATION_USER]),
              ("replica-read-only", "yes")]
    if announce_host:
        lines.append(("replica-announce-ip", announce_host))
    if len(group.instances) > 1:
        # A full sync starts once every other instance asks for one, not after the 5 s default wait.
        lines.append(("repl-diskless-sync-max-replicas", str(len(group.instances) - 1)))
        if min_replicas_to_write > 0:
            lines += [("min-replicas-to-write", str(min_replicas_to_write)), ("min-replicas-max-lag", "10")]
    return "# Replication, generated by components/data/sentinel_files.py.\n" + "".join(
        f"{key} {value}\n" for key, value in lines)


def discovery_user(service: str) -> acl.AclUser:
    """A service's user on the sentinels: the same name (and password) as on Redis, queries only."""
    return acl.AclUser(service, ("-@all", "&+switch-master", *DISCOVERY_ALLOWED))


def exporter_user() -> acl.AclUser:
    """The metrics exporter's user on a sentinel: the same name (and password) as on Redis, read-only."""
    return acl.AclUser(acl.EXPORTER_USER, ("-@all", *EXPORTER_ALLOWED))


def sentinel_side_users(services: Sequence[str], observers: Sequence[acl.AclUser] = ()) -> list[acl.AclUser]:
    """Users of a sentinel: the other sentinels, one discovery user per service, any ``observers``
    (the exporter), ``default`` off.
    """
    peer = acl.AclUser(SENTINEL_USER, (f"&{HELLO_CHANNEL}", "-@all", *PEER_ALLOWED))
    return [peer, *(discovery_user(service) for service in services), *observers, acl.default_user()]


def sentinel_conf(
    group: SentinelGroup, index: int, passwords: Mapping[str, str], services: Sequence[str], *,
    data_dir: str, bind: str = "* -::*", observers: Sequence[acl.AclUser] = (),
) -> str:
    """The complete sentinel.conf of sentinel ``index``.

    Sentinel rewrites this file as it learns (replicas, peers, epochs), so it must be a writable
    copy in ``data_dir``, not a mounted ConfigMap. Host names are resolved and announced as names
    (``resolve-hostnames``/``announce-hostnames``) because pod IPs change when pods restart.
    """
    me = group.sentinels[index]
    password = passwords.get(SENTINEL_USER)
    if not password:
        raise ValueError(f"no password for Redis user {SENTINEL_USER!r}")
    name = group.master_name
    values: list[tuple[str, str]] = [
        ("bind", bind), ("port", str(me.port)), ("dir", data_dir), ("daemonize", "no"), ("logfile", '""'),
        ("protected-mode", "no"),  # the default user is off instead (protected mode only looks at it)
        # Names before `monitor`: the master's host is read as a name only once these are on.
        ("sentinel resolve-hostnames", "yes"), ("sentinel announce-hostnames", "yes"),
        ("sentinel announce-ip", me.host), ("sentinel announce-port", str(me.port)),
        ("sentinel sentinel-user", SENTINEL_USER), ("sentinel sentinel-pass", password),
        ("sentinel deny-scripts-reconfig", "yes"),
        ("sentinel monitor", f"{name} {group.master.host} {group.master.port} {group.quorum}"),
        ("sentinel auth-user", f"{name} {SENTINEL_USER}"), ("sentinel auth-pass", f"{name} {password}"),
        ("sentinel down-after-milliseconds", f"{name} {group.down_after_ms}"),
        ("sentinel failover-timeout", f"{name} {group.failover_timeout_ms}"),
        ("sentinel parallel-syncs", f"{name} 1"),
    ]
    users = acl.acl_file(sentinel_side_users(services, observers), passwords)
    return ("# Generated by components/data/sentinel_files.py; Sentinel rewrites it at run time.\n"
            + "".join(f"{key} {value}\n" for key, value in values) + users)


@dataclass(frozen=True)
class SentinelDiscovery:
    """What a client is handed to find the master: where the sentinels are, which master, who it is."""

    sentinels: tuple[Address, ...]
    master_name: str
    username: str


def discovery_for(group: SentinelGroup, service: str) -> SentinelDiscovery:
    return SentinelDiscovery(group.sentinels, group.master_name, acl.service_user(service).name)


def client_env(discovery: SentinelDiscovery) -> dict[str, str]:
    """The discovery settings as environment variables (no password: that stays in the Secret)."""
    return {
        "REDIS_SENTINELS": ",".join(str(address) for address in discovery.sentinels),
        "REDIS_MASTER_NAME": discovery.master_name,
        "REDIS_USERNAME": discovery.username,
    }
