"""``codai-platform:postgres``: the PostgreSQL server's settings, in the cluster or managed."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from settings.data_server import ExternalServer, ServerSettings
from settings.data_sizing import POSTGRES_SIZING, ServerSizing
from settings.data_values import PinnedImage
from settings.defaults import SizingProfile
from settings.postgres_backup import PostgresBackupSettings
from settings.quantities import Memory

#: libpq ``sslmode`` values that make sense for a server across a network.
PostgresTlsMode = Literal["disable", "require", "verify-ca", "verify-full"]

_PARAMETER = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


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


#: Parameters the program sets itself: changing them would break the pod or the NetworkPolicies.
POSTGRES_OWNED_PARAMETERS = frozenset({
    "listen_addresses", "port", "unix_socket_directories", "data_directory", "hba_file", "ident_file",
    "config_file", "password_encryption", "max_connections", "shared_preload_libraries",
})


class PostgresSettings(ServerSettings):
    """``codai-platform:postgres``: the PostgreSQL server every service with a database uses."""

    sizing_table: ClassVar[dict[SizingProfile, ServerSizing]] = POSTGRES_SIZING
    key: ClassVar[str] = "postgres"

    image: PinnedImage = Field(default="postgres:16.4-bookworm", description="Server image (in-cluster), also used "
                               "by the bootstrap and backup jobs; PostgreSQL 16.4 when unset.")
    exporter_image: PinnedImage = Field(default="quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
                                        description="Metrics exporter image (in-cluster).")
    max_connections: int = Field(default=200, ge=20, le=5000, description="Server max_connections (in-cluster).")
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

    def referenced_secrets(self) -> set[str]:
        store = self.backup.object_store
        return super().referenced_secrets() | ({store.credentials_secret} if self.backup.enabled and store else set())

    @model_validator(mode="after")
    def _rules(self) -> PostgresSettings:
        self._check_mode(self.external)
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
