"""Redis users: one per service, confined to its own keys and channels, and the default user off.

Pure generation of ACL rules, written two ways from the same rules: an ACL file (``aclfile``
of an in-cluster server) and ``ACL SETUSER`` commands (the bootstrap of an external server).
Passwords appear only as SHA-256 digests (``#<hex>``): neither form holds a password.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: The metrics exporter's login and the pod's health probe login.
EXPORTER_USER = "exporter"
HEALTHCHECK_USER = "healthcheck"
DEFAULT_USER = "default"

#: What a service may not run although it touches no other service's keys: everything Redis
#: files as dangerous (FLUSHALL, FLUSHDB, CONFIG, DEBUG, SHUTDOWN, KEYS, MONITOR, ACL, SWAPDB,
#: INFO...), commands that list or pick keys regardless of key patterns (SCAN, RANDOMKEY would
#: show other services' key names), and server-wide script and function state others rely on.
SERVICE_DENIED = ("-@dangerous", "-scan", "-randomkey", "-function", "-script|flush", "-script|kill")

#: What redis_exporter runs in a default scrape, and nothing that reads or writes a key. Listed
#: one by one: the @connection category would also allow CLIENT KILL and CLIENT PAUSE.
EXPORTER_ALLOWED = (
    "+ping", "+hello", "+select", "+client|setname", "+client|getname", "+client|info", "+client|list", "+info",
    "+config|get", "+slowlog|get", "+slowlog|len", "+latency|latest", "+latency|histogram", "+memory|stats",
    "+cluster|info", "+dbsize",
)

_USER = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class AclUser:
    name: str
    #: Rules after ``reset`` and the password; see :func:`service_user`.
    rules: tuple[str, ...]
    #: Off users cannot log in whatever else they allow.
    enabled: bool = True


def key_prefix(service: str) -> str:
    """The only keys (and pub/sub channels) a service may touch start with this."""
    return f"{service}:"


def service_user(service: str) -> AclUser:
    prefix = key_prefix(service)
    return AclUser(service, (f"~{prefix}*", f"&{prefix}*", "+@all", *SERVICE_DENIED))


def exporter_user() -> AclUser:
    return AclUser(EXPORTER_USER, ("-@all", *EXPORTER_ALLOWED))


def healthcheck_user() -> AclUser:
    return AclUser(HEALTHCHECK_USER, ("-@all", "+ping"))


def default_user() -> AclUser:
    """Redis's ``default`` user: off, without any password, allowed nothing."""
    return AclUser(DEFAULT_USER, ("-@all",), enabled=False)


def password_digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _rules(user: AclUser, passwords: Mapping[str, str]) -> list[str]:
    # `reset` first: the user is exactly these rules, whatever it was before (SETUSER is
    # cumulative), so applying them again changes nothing.
    if not user.enabled:
        return ["reset", *user.rules]
    password = passwords.get(user.name)
    if not password:
        raise ValueError(f"no password for Redis user {user.name!r}")
    return ["reset", "on", f"#{password_digest(password)}", *user.rules]


def _check(users: Sequence[AclUser]) -> None:
    names = [user.name for user in users]
    if len(set(names)) != len(names):
        raise ValueError(f"Redis users listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    bad = [name for name in names if not _USER.match(name)]
    if bad:
        raise ValueError(f"{bad} are not Redis user names this program makes (lowercase, digits, '-', '_')")


def acl_file(users: Sequence[AclUser], passwords: Mapping[str, str]) -> str:
    """The ``aclfile`` of a server: one ``user`` line per user, in name order."""
    _check(users)
    return "".join(f"user {user.name} {' '.join(_rules(user, passwords))}\n"
                   for user in sorted(users, key=lambda u: u.name))


def setuser_commands(users: Sequence[AclUser], passwords: Mapping[str, str]) -> str:
    """The same users as ``ACL SETUSER`` lines for ``redis-cli`` (one command per line)."""
    _check(users)
    return "".join(f"ACL SETUSER {user.name} {' '.join(_rules(user, passwords))}\n"
                   for user in sorted(users, key=lambda u: u.name))
