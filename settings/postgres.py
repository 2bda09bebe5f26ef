"""``codai-platform:postgres``: the PostgreSQL server's settings, in the cluster or managed."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from settings.base import DnsLabel, Problem, SettingsModel
from settings.data_server import ExternalServer, ServerSettings
from settings.data_sizing import POSTGRES_SIZING, ContainerResources, ServerSizing
from settings.data_values import PinnedImage
from settings.defaults import SizingProfile
from settings.postgres_backup import PostgresBackupSettings
from settings.quantities import Memory
from settings.workload import Resources

#: libpq ``sslmode`` values that make sense for a server across a network.
PostgresTlsMode = Literal["disable", "require", "verify-ca", "verify-full"]

_PARAMETER = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
#: A 7 in a day-of-week field (alone, in a list or ending a range): cron's other name for Sunday.
_SUNDAY_AS_SEVEN = re.compile(r"(^|[,-])7($|[,/-])")
#: Docker Hub's PostgreSQL images have no barman-cloud: WAL archiving, backups and recovery would fail.
_DOCKER_HUB_POSTGRES = re.compile(r"^(docker\.io/)?(library/)?postgres[:@]")


def lacks_barman_cloud(image: str) -> bool:
    """Docker Hub's ``postgres``: the image a CloudNativePG Cluster must not run."""
    return bool(_DOCKER_HUB_POSTGRES.match(image))


class ExternalPostgres(ExternalServer):
    port: int = Field(default=5432, ge=1, le=65535, description="Port of the server.")
    tls_mode: PostgresTlsMode = Field(
        default="verify-full",
        description="libpq sslmode of every connection. verify-full (the default) checks the server's certificate "
        "against the system CA bundle (sslrootcert=system); use require for a server signed by a private CA.",
    )
    admin_database: str = Field(default="postgres", min_length=1, max_length=63,
                                pattern=r"^[A-Za-z_][A-Za-z0-9_$-]*$", description="Database the administrator "
                                "connects to for the bootstrap and the backups' list of databases.")


#: Parameters the program or CloudNativePG sets itself: changing them would break the instances,
#: their replication and archiving, or the NetworkPolicies (the operator refuses most of them too).
POSTGRES_OWNED_PARAMETERS = frozenset({
    "listen_addresses", "port", "unix_socket_directories", "data_directory", "hba_file", "ident_file",
    "config_file", "password_encryption", "max_connections", "shared_preload_libraries",
    "archive_mode", "archive_command", "restore_command", "primary_conninfo", "primary_slot_name",
    "synchronous_standby_names", "hot_standby", "full_page_writes", "wal_log_hints", "cluster_name",
    "ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "logging_collector", "log_destination",
    "log_directory", "log_filename",
})


#: The most PgBouncers one Pooler may run: each holds its whole tier's pools on the server, so a tier needing
#: more has clients to shrink, not PgBouncers to add.
MAX_POOLER_INSTANCES = 9


class PoolerSettings(SettingsModel):
    """PgBouncer in front of the in-cluster server: CloudNativePG's Pooler, one per tier (docs/data.md)."""

    instances: int | None = Field(
        default=None, ge=1, le=MAX_POOLER_INSTANCES,
        description="PgBouncer pods of each tier's Pooler. The sizing profile's when unset: 1 for minimal, 2 for "
        "highAvailability. Each one holds its own pools, which the connection budget counts against maxConnections."
    )
    resources: Resources = Field(default_factory=Resources, description="Requests and limits of each PgBouncer "
                                 "container; unset values come from the sizing profile.")


class PostgresSettings(ServerSettings):
    """``codai-platform:postgres``: the PostgreSQL server every service with a database uses."""

    sizing_table: ClassVar[dict[SizingProfile, ServerSizing]] = POSTGRES_SIZING
    key: ClassVar[str] = "postgres"

    image: PinnedImage = Field(
        default="ghcr.io/cloudnative-pg/postgresql:16.4", description="A CloudNativePG operand image: the "
        "instances run it, and its barman-cloud archives WAL, takes base backups and recovers (in-cluster); the "
        "bootstrap and backup jobs of an external server use its psql and pg_dump. PostgreSQL 16.4 when unset."
    )
    instances: int | None = Field(
        default=None, ge=1, le=9, description="PostgreSQL instances (in-cluster): a primary and its standbys, "
        "spread over nodes and zones; the operator promotes a standby when the primary is lost. The sizing "
        "profile's when unset: 1 for minimal, 3 for highAvailability."
    )
    pooler: PoolerSettings = Field(default_factory=PoolerSettings)
    operator_namespace: DnsLabel = Field(
        default="cnpg-system", description="Namespace of the CloudNativePG operator, a cluster prerequisite "
        "(in-cluster): it calls each instance's status endpoint, which the instances' NetworkPolicy opens to it only."
    )
    max_connections: int = Field(default=200, ge=20, le=5000, description="Server max_connections (in-cluster). "
                                 "The tiers' pools must fit it: a stack whose pools do not is refused, naming them.")
    connection_limit_per_service: int = Field(
        default=40, ge=1, description="CONNECTION LIMIT of each service's role, so one leaking pool cannot take "
        "every connection of the server. 40 when unset."
    )
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Extra postgresql.conf parameters (in-cluster), over the tuned values "
        "derived from the memory limit (docs/data.md). None when unset."
    )
    external: ExternalPostgres | None = Field(default=None, description="The managed server; required when mode "
                                              "is external.")
    backup: PostgresBackupSettings = Field(default_factory=PostgresBackupSettings)

    def instance_count(self, row: ServerSizing) -> int:
        return self.instances or row.instances

    def pooler_sizing(self, row: ServerSizing) -> ContainerResources | None:
        assert row.pooler is not None  # every PostgreSQL row has its pooler
        return row.pooler.overridden(self.pooler.resources)

    def pooler_count(self, row: ServerSizing) -> int:
        return self.pooler.instances or row.pooler_instances

    def problems(self, profile: SizingProfile) -> list[Problem]:
        """Also here, not in a validator, so that a stack without a `postgres` key is told where to look."""
        problems = super().problems(profile)
        pooler = self.sizing(profile).pooler
        if self.in_cluster and pooler is not None:
            problems += pooler.problems(f"{self.key}.pooler.resources")
        if self.in_cluster and self.backup.enabled and self.backup.target == "volume":
            problems.append(("postgres.backup.target", "volume keeps the backups in the cluster they protect: an "
                             "in-cluster server archives WAL and base backups to an object store (backup.target: "
                             "objectStore, with backup.objectStore.url and .credentialsSecret), or set "
                             "backup.enabled: false"))
        weekday = self.backup.schedule.split()[-1]
        if self.in_cluster and self.backup.enabled and _SUNDAY_AS_SEVEN.search(weekday):
            problems.append(("postgres.backup.schedule", f"day of week {weekday!r}: write Sunday as 0, as "
                             "CloudNativePG's scheduler reads 0-6 and refuses 7"))
        return problems

    def referenced_secrets(self) -> set[str]:
        store = self.backup.object_store
        return super().referenced_secrets() | ({store.credentials_secret} if self.backup.enabled and store else set())

    @model_validator(mode="after")
    def _rules(self) -> PostgresSettings:
        self._check_mode(self.external)
        if self.external is not None:
            stray = sorted({"instances", "pooler"} & self.model_fields_set)
            if stray:
                raise ValueError(f"{', '.join(stray)} set but mode is external: the provider runs the managed "
                                 "server's replicas and its connections")
        elif lacks_barman_cloud(self.image):
            raise ValueError(f"image {self.image!r} has no barman-cloud, which archiving, backups and recovery run: "
                             "use a CloudNativePG operand image such as ghcr.io/cloudnative-pg/postgresql:16.4")
        owned = sorted(POSTGRES_OWNED_PARAMETERS & self.parameters.keys())
        if owned:
            raise ValueError(f"parameters {owned} are set by the program; use the dedicated settings")
        bad = sorted(name for name in self.parameters if not _PARAMETER.match(name))
        if bad:
            raise ValueError(f"parameters {bad} are not postgresql.conf parameter names (lowercase, '_')")
        # A line break would end the line in postgresql.conf and let a value set other parameters.
        unprintable = sorted(name for name, value in self.parameters.items() if not value.isprintable())
        if unprintable:
            raise ValueError(f"parameters {unprintable} hold a line break or another control character")
        if self.in_cluster and self.connection_limit_per_service >= self.max_connections:
            raise ValueError(f"connectionLimitPerService {self.connection_limit_per_service} must stay below "
                             f"maxConnections {self.max_connections}")
        return self


def backup_storage(postgres: PostgresSettings, profile: SizingProfile) -> Memory:
    size = postgres.backup.storage_size or postgres.sizing_table[profile].backup_storage
    assert size is not None  # every PostgreSQL row sets it
    return size
