"""The specs of the CloudNativePG objects that run the in-cluster PostgreSQL, as plain dicts.

The operator runs the primary, the standbys, failover and switchover; this program only describes
them. Each builder returns the ``spec`` of one ``postgresql.cnpg.io/v1`` object (Cluster, Pooler,
Database; backups in ``cnpg_backup_specs.py``), checked against the CRDs vendored in
``vendor/crds/cloudnative-pg`` (v1.29.1) by tests/test_cnpg_specs.py. No Pulumi here: the component
(postgres_cluster.py) registers them. What a managed server's bootstrap SQL does, and how it is said here:

- one login role per service with a CONNECTION LIMIT and no other right: ``spec.managed.roles``,
  which the operator keeps as declared (it reverts a role changed by hand);
- one database per service, owned by its role: a ``Database`` object each (kept when the object is
  deleted: ``databaseReclaimPolicy: retain``); each role reaches its own database only (``SERVICE_HBA``);
- spread over zones and nodes, priority class, requests and limits, labels; PgBouncer: a ``Pooler``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.data import sql
from components.data.cnpg_backup_specs import BarmanStore, backup_section, check_name, recovery_sections
from settings.base import checked
from settings.connection_budget import Budget, ServiceConnections
from settings.data_values import pinned_image
from settings.postgres import lacks_barman_cloud

ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
#: Labels the operator puts on its pods: which Cluster or Pooler, and instance or pooler.
CLUSTER_LABEL = "cnpg.io/cluster"
POOLER_LABEL = "cnpg.io/poolerName"
ROLE_LABEL = "cnpg.io/podRole"
#: The login PgBouncer runs ``auth_query`` as: the name CloudNativePG's Pooler uses.
AUTH_ROLE = "cnpg_pooler_pgbouncer"
#: Roles the operator owns: its superuser, its replication login and the Pooler's auth_query login.
OPERATOR_ROLES = frozenset({"postgres", "streaming_replica", AUTH_ROLE})
#: pg_hba lines after the operator's own (its replication and pooler logins, by certificate): a role reaches the
#: database of its own name only (proven on a real server from tests/oracles/postgres_server.py); nothing else.
SERVICE_HBA = ("host sameuser all all scram-sha-256", "host all all all reject")
#: Databases the Database CRD refuses by CEL rules (which a JSON schema check does not run).
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})
_STORAGE = re.compile(r"^[1-9][0-9]*(Mi|Gi|Ti)$")


@dataclass(frozen=True)
class ManagedRole:
    """One service's login role: its name, the Secret holding its password, its connection limit.

    The Secret must be of type ``kubernetes.io/basic-auth`` with ``username`` (the role) and
    ``password``, as CloudNativePG reads it; label it ``cnpg.io/reload: "true"`` so that a rotated
    password reaches the server without a restart.
    """

    name: str
    password_secret: str
    connection_limit: int

    def __post_init__(self) -> None:
        if sql.identifier(self.name) != self.name:
            raise ValueError(f"role {self.name!r}: write it as PostgreSQL does, {sql.identifier(self.name)!r}")
        if self.name in OPERATOR_ROLES:
            raise ValueError(f"role {self.name!r} belongs to the operator")
        check_name("password Secret", self.password_secret)
        if self.connection_limit < 1:
            raise ValueError(f"role {self.name}: connection limit {self.connection_limit} must be at least 1")

    @classmethod
    def for_service(cls, service: str, password_secret: str, connection_limit: int) -> ManagedRole:
        """The role a service logs in as, named as the bootstrap names it (``-`` as ``_``)."""
        return cls(sql.identifier(service), password_secret, connection_limit)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name, "ensure": "present", "login": True, "connectionLimit": self.connection_limit,
            "passwordSecret": {"name": self.password_secret},
            # Stated, not left to defaults: the operator then reverts any of them granted by hand.
            "superuser": False, "createdb": False, "createrole": False, "replication": False, "bypassrls": False,
        }


Resources = Mapping[str, Mapping[str, str]]


def checked_resources(what: str, resources: Resources) -> dict[str, dict[str, str]]:
    """Requests and limits, both: the namespace's quota counts both and admits no pod without them."""
    if set(resources) != {"requests", "limits"} or any(set(v) - {"cpu", "memory"} for v in resources.values()):
        raise ValueError(f"{what} resources must have requests and limits, of cpu and memory only: {resources}")
    return {kind: dict(amounts) for kind, amounts in resources.items()}


def checked_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The operator's selectors use its ``cnpg.io/`` labels: ours must not set or replace them."""
    taken = sorted(key for key in labels if key.startswith("cnpg.io/"))
    if taken:
        raise ValueError(f"labels {taken} belong to the operator (cnpg.io/)")
    return dict(labels)


@dataclass(frozen=True)
class ClusterPlan:
    """What one CloudNativePG Cluster is made of (``name`` is the Cluster's, its pods are ``<name>-N``)."""

    name: str
    instances: int
    #: A CloudNativePG operand image (``ghcr.io/cloudnative-pg/postgresql:16.4``): it carries
    #: barman-cloud, which archiving, backups and recovery run.
    image: str
    storage_size: str
    resources: Resources
    max_connections: int
    roles: tuple[ManagedRole, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    storage_class: str | None = None
    priority_class_name: str | None = None
    backup: BarmanStore | None = None
    #: Off: nothing here logs in as ``postgres`` over the network (see :func:`cluster_spec`).
    superuser_access: bool = False
    #: ``preferred`` keeps every instance running on fewer nodes than instances; ``required`` does not.
    anti_affinity: str = "preferred"

    def __post_init__(self) -> None:
        check_name("cluster", self.name)
        if self.instances < 1:
            raise ValueError(f"instances {self.instances}: a Cluster needs at least 1 PostgreSQL instance "
                             "(production runs 3: a primary and two standbys)")
        checked("image", pinned_image, self.image)
        if lacks_barman_cloud(self.image):
            raise ValueError(f"image {self.image!r} has no barman-cloud: use a CloudNativePG operand image "
                             "such as ghcr.io/cloudnative-pg/postgresql:16.4")
        if not _STORAGE.match(self.storage_size):
            raise ValueError(f"storage size {self.storage_size!r} must be a quantity such as '100Gi'")
        checked_resources("cluster", self.resources)
        checked_labels(self.labels)
        if "max_connections" in self.parameters:
            raise ValueError("parameters must not set max_connections: it is its own input")
        names = [role.name for role in self.roles]
        if len(set(names)) != len(names):
            raise ValueError(f"roles must be given once each: {names}")
        for role in self.roles:
            if role.connection_limit >= self.max_connections:
                raise ValueError(f"role {role.name}: connection limit {role.connection_limit} must stay below "
                                 f"max_connections {self.max_connections}")
        if self.anti_affinity not in ("preferred", "required"):
            raise ValueError(f"anti_affinity {self.anti_affinity!r} is not 'preferred' or 'required'")


def zone_spread(match_labels: Mapping[str, str], *keys: str, template_hash: bool = False) -> list[dict[str, Any]]:
    """One soft spread per topology key: a zone or node lost takes one instance, not the majority.

    ``ScheduleAnyway``: a cluster with a single zone (staging, the local cluster) still runs them all.
    """
    # Pods of a Deployment (the Pooler's) count only beside pods of their own ReplicaSet.
    return [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": dict(match_labels)},
             **({"matchLabelKeys": ["pod-template-hash"]} if template_hash else {})} for key in keys]


def cluster_spec(plan: ClusterPlan) -> dict[str, Any]:
    """The ``spec`` of the Cluster ``plan`` describes; bootstrapped by ``initdb`` (the default).

    Superuser access is off: the instance manager creates the roles and Databases over the pod's
    socket, and ``SERVICE_HBA`` does what the bootstrap's REVOKEs do, so no Job needs ``postgres``.
    """
    storage: dict[str, Any] = {"size": plan.storage_size}
    if plan.storage_class:
        storage["storageClass"] = plan.storage_class
    spec: dict[str, Any] = {
        "instances": plan.instances,
        "imageName": plan.image,
        "storage": storage,
        "resources": checked_resources("cluster", plan.resources),
        "postgresql": {"parameters": {"max_connections": str(plan.max_connections), **plan.parameters},
                       "pg_hba": list(SERVICE_HBA)},
        "managed": {"roles": [role.spec() for role in plan.roles]},
        "enableSuperuserAccess": plan.superuser_access,
        # Updates restart the standbys first, then move the primary to an updated standby
        # (a switchover: seconds of refused writes) instead of restarting it in place.
        "primaryUpdateStrategy": "unsupervised",
        "primaryUpdateMethod": "switchover",
        "affinity": {"enablePodAntiAffinity": True, "topologyKey": HOSTNAME,
                     "podAntiAffinityType": plan.anti_affinity},
        "topologySpreadConstraints": zone_spread({CLUSTER_LABEL: plan.name, ROLE_LABEL: "instance"}, ZONE),
        # On every object the operator makes (pods, Services, claims): the platform's labels.
        "inheritedMetadata": {"labels": checked_labels(plan.labels)},
    }
    if plan.priority_class_name:
        spec["priorityClassName"] = plan.priority_class_name
    if plan.backup:
        spec["backup"] = backup_section(plan.backup)
    return spec


def recovery_cluster_spec(source: BarmanStore, target_time: str, plan: ClusterPlan) -> dict[str, Any]:
    """A new Cluster, ``plan``, built from ``source``'s backups replayed up to ``target_time``, then promoted.

    The point-in-time recovery of docs/restore-postgres.md. ``source.server_name`` is the recovered
    Cluster's name (its folder in the bucket). The new Cluster must not archive into that folder
    (it would mix two histories): its own ``plan.backup``, if any, goes elsewhere.
    """
    sections = recovery_sections(source, target_time)
    own = plan.backup
    if own and (own.destination_path, own.server_name or plan.name) == (source.destination_path, source.server_name):
        raise ValueError(f"cluster {plan.name} would archive into the folder it recovers from "
                         f"({source.destination_path}, server {source.server_name}): give it another destination "
                         "or server name")
    return {**cluster_spec(plan), **sections}


#: CloudNativePG 1.29.1's webhook refuses any other PgBouncer parameter (internal/webhook/v1/pooler_webhook.go);
#: the pool mode, listening address and authentication are the operator's.
POOLER_PARAMETERS = frozenset((
    "application_name_add_host", "auth_type", "autodb_idle_timeout", "cancel_wait_timeout", "client_idle_timeout",
    "client_login_timeout", "client_tls_ciphers", "client_tls_sslmode", "client_tls13_ciphers", "default_pool_size",
    "disable_pqexec", "dns_max_ttl", "dns_nxdomain_ttl", "idle_transaction_timeout", "ignore_startup_parameters",
    "listen_backlog", "log_connections", "log_disconnections", "log_pooler_errors", "log_stats", "max_client_conn",
    "max_db_connections", "max_packet_size", "max_prepared_statements", "max_user_connections", "min_pool_size",
    "pkt_buf", "query_timeout", "query_wait_timeout", "reserve_pool_size", "reserve_pool_timeout", "sbuf_loopcnt",
    "server_check_delay", "server_check_query", "server_connect_timeout", "server_fast_close", "server_idle_timeout",
    "server_lifetime", "server_login_retry", "server_reset_query", "server_reset_query_always", "server_round_robin",
    "server_tls_ciphers", "server_tls13_ciphers", "server_tls_protocols", "server_tls_sslmode", "stats_period",
    "suspend_timeout", "tcp_defer_accept", "tcp_socket_buffer", "tcp_keepalive", "tcp_keepcnt", "tcp_keepidle",
    "tcp_keepintvl", "tcp_user_timeout", "track_extra_parameters", "verbose",
))


def pooler_parameters(budget: Budget, services: Sequence[ServiceConnections]) -> dict[str, str]:
    """The PgBouncer parameters of one Pooler serving ``services``, from a budget that fits.

    CloudNativePG writes the Pooler's ``[databases]`` as a single ``*`` entry, so every database
    gets the same pool (``default_pool_size``, capped per database by ``max_db_connections``),
    where the tests' oracle (tests/oracles/pgbouncer.py) gives each its own. Services with different pools
    (the core tier's 4, the others' 2) need one Pooler per pool size; giving them all the largest would
    overrun the server connections the budget counted, so they are refused here. Each Pooler's instances
    then make their own ``auth_query`` connection: count them in the budget's ``Reserved.auth_per_pooler``.
    """
    pools = sorted({service.pool_size for service in services})
    if len(pools) != 1:
        raise ValueError(f"one Pooler gives every database the same pool, and these services have pools {pools}: "
                         "make one Pooler per pool size")
    return {
        "max_client_conn": str(budget.max_client_conn),
        "default_pool_size": str(pools[0]),
        "max_db_connections": str(pools[0]),
        # A reserve pool would open connections beyond the ones the budget counted.
        "reserve_pool_size": "0",
    }


def pooler_spec(cluster: str, instances: int, pool_mode: str = "transaction",
                parameters: Mapping[str, str] | None = None, *, name: str, labels: Mapping[str, str] | None = None,
                priority_class_name: str | None = None, resources: Resources | None = None) -> dict[str, Any]:
    """A ``Pooler``'s spec: ``instances`` PgBouncers in front of ``cluster``'s primary (type ``rw``).

    ``name`` is the Pooler's own (its pods' ``cnpg.io/poolerName``, spread over zones and nodes).
    The pod template adds only placement, labels and resources: the operator already runs
    PgBouncer non-root, with a read-only root filesystem, no capabilities and RuntimeDefault
    seccomp, and its instance manager needs its API token (it watches the Pooler and Secrets).
    """
    check_name("cluster", cluster)
    if check_name("pooler", name) == cluster:
        raise ValueError(f"pooler {name!r} must not have its cluster's name (CloudNativePG refuses it)")
    if instances < 1:
        raise ValueError(f"pooler instances {instances}: at least 1")
    if pool_mode not in ("session", "transaction"):
        raise ValueError(f"pool mode {pool_mode!r} is not 'session' or 'transaction'")
    unknown = sorted(set(parameters or {}) - POOLER_PARAMETERS)
    if unknown:
        raise ValueError(f"PgBouncer parameters {unknown} are refused by CloudNativePG (reserved or unknown)")
    container = {"name": "pgbouncer", "resources": checked_resources("pooler", resources)} if resources else None
    pod: dict[str, Any] = {
        # Required by the template's schema; the operator fills in the rest of its `pgbouncer` container.
        "containers": [container] if container else [],
        "topologySpreadConstraints": zone_spread({POOLER_LABEL: name}, ZONE, HOSTNAME, template_hash=True),
    }
    if priority_class_name:
        pod["priorityClassName"] = priority_class_name
    return {
        "cluster": {"name": cluster}, "instances": instances, "type": "rw",
        "pgbouncer": {"poolMode": pool_mode, "parameters": dict(parameters or {})},
        "template": {"metadata": {"labels": checked_labels(labels or {})}, "spec": pod},
    }


def database_spec(cluster: str, name: str, owner: str) -> dict[str, Any]:
    """A ``Database``'s spec: database ``name`` in ``cluster``, owned by the login role ``owner``.

    ``databaseReclaimPolicy: retain``: deleting the object (or the stack) leaves the database and
    its data in place, as the bootstrap never drops anything either.
    """
    if name in RESERVED_DATABASES:
        raise ValueError(f"database {name!r} is reserved by PostgreSQL")
    for what, value in (("database", name), ("owner", owner)):
        if sql.identifier(value) != value:
            raise ValueError(f"{what} {value!r}: write it as PostgreSQL does, {sql.identifier(value)!r}")
    return {"cluster": {"name": check_name("cluster", cluster)}, "name": name, "owner": owner,
            "ensure": "present", "databaseReclaimPolicy": "retain"}
