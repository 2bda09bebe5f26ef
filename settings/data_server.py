"""What the PostgreSQL and Redis settings share: the mode, the managed server and its credentials."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, IPvAnyNetwork

from settings.base import DnsLabel, Problem, SecretKey, SettingsModel
from settings.data_sizing import ContainerResources, ServerSizing
from settings.data_values import Host
from settings.defaults import SizingProfile
from settings.quantities import Memory
from settings.workload import Resources

Mode = Literal["inCluster", "external"]


class SecretReference(SettingsModel):
    """An existing Secret in the platform namespace, made outside this program (External Secrets...)."""

    name: DnsLabel = Field(description="Name of the Secret; it must exist before the first deployment.")
    username_key: SecretKey = Field(default="username", description="Key holding the user name.")
    password_key: SecretKey = Field(default="password", description="Key holding the password.")


class ExternalServer(SettingsModel):
    """A server this program does not run: where it is and how to reach it."""

    host: Host = Field(description="DNS name or IP address of the server.")
    port: int = Field(ge=1, le=65535, description="Port of the server.")
    admin_secret: SecretReference = Field(
        description="Credentials of an administrator that may create users (and, for PostgreSQL, databases)."
    )
    egress_cidrs: list[IPvAnyNetwork] = Field(
        min_length=1,
        description="Address ranges of the server. NetworkPolicies match addresses, not names: the clients "
        "may open connections to these ranges on the server's port only. Required.",
    )


class ServerSettings(SettingsModel):
    """What PostgreSQL and Redis settings have in common."""

    #: The sizing table of the server; set by each subclass.
    sizing_table: ClassVar[dict[SizingProfile, ServerSizing]]
    #: Stack-file key of the settings (``postgres`` / ``redis``), for error messages.
    key: ClassVar[str]

    mode: Mode = Field(default="inCluster", description="inCluster: servers this program runs in the cluster (the "
                       "default; PostgreSQL through the CloudNativePG operator, Redis as a StatefulSet); external: a "
                       "managed server described by `external`.")
    storage_size: Memory | None = Field(
        default=None, description="Size of the data volume; the sizing profile's when unset. Applies to new volumes: "
        "an existing volume is grown by expanding its PersistentVolumeClaim (docs/data.md)."
    )
    storage_class: DnsLabel | None = Field(default=None, description="StorageClass of the data volume; the cluster's "
                                           "default class when unset.")
    resources: Resources = Field(default_factory=Resources, description="Requests and limits of the server "
                                 "container; unset values come from the sizing profile.")

    @property
    def in_cluster(self) -> bool:
        return self.mode == "inCluster"

    @property
    def external_server(self) -> ExternalServer | None:
        """The managed server, when the mode is external (each subclass types its own ``external``)."""
        return None if self.in_cluster else getattr(self, "external", None)

    def sizing(self, profile: SizingProfile) -> ServerSizing:
        """The profile's row with this stack's overrides applied."""
        row = self.sizing_table[profile]
        return ServerSizing(
            server=row.server.overridden(self.resources),
            exporter=self.exporter_sizing(row),
            storage=self.storage_size or row.storage,
            backup_storage=row.backup_storage,
            instances=self.instance_count(row),
            pooler=self.pooler_sizing(row),
            pooler_instances=self.pooler_count(row),
        )

    def exporter_sizing(self, row: ServerSizing) -> ContainerResources | None:
        """The exporter's resources with the stack's overrides (Redis); the row's, or none, elsewhere."""
        return row.exporter

    def pooler_sizing(self, row: ServerSizing) -> ContainerResources | None:
        """The pooler's resources with the stack's overrides (PostgreSQL); none elsewhere."""
        return row.pooler

    def pooler_count(self, row: ServerSizing) -> int:
        return row.pooler_instances

    def pod_containers(self, sizing: ServerSizing) -> list[ContainerResources]:
        """The containers of one server pod, as the quota counts them: the server and its exporter."""
        return [sizing.server, *([sizing.exporter] if sizing.exporter else [])]

    def instance_count(self, row: ServerSizing) -> int:
        """The stack's own count where a server has one (Redis), else the profile's."""
        return row.instances

    def problems(self, profile: SizingProfile) -> list[Problem]:
        """Rules that need the sizing profile, which lives under another key (``environment.sizing``)."""
        return self.sizing(profile).server.problems(f"{self.key}.resources")

    def referenced_secrets(self) -> set[str]:
        """Secrets the stack names that this program does not make (they must exist beforehand)."""
        external = self.external_server
        return {external.admin_secret.name} if external else set()

    def _check_mode(self, external: ExternalServer | None) -> None:
        if self.mode == "external" and external is None:
            raise ValueError("mode is external but `external` (host, adminSecret, egressCidrs) is not set")
        if self.mode == "inCluster" and external is not None:
            raise ValueError("`external` is set but mode is inCluster; set mode: external or remove `external`")
