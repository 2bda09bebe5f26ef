"""Stack settings of the shared data services: PostgreSQL and Redis.

Each is either run in the cluster (``inCluster``, the default: a StatefulSet this program
deploys) or a managed server the stack points at (``external``). Sizing defaults come from
one table per server and sizing profile (:data:`POSTGRES_SIZING`, :data:`REDIS_SIZING`);
a stack overrides single values. Stack-file keys are ``codai-platform:postgres`` and
``codai-platform:redis``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, IPvAnyNetwork, model_validator

from settings.base import DnsLabel, Problem, SecretKey, SettingsModel
from settings.defaults import SizingProfile
from settings.quantities import Cpu, Memory
from settings.workload import Resources

Mode = Literal["inCluster", "external"]
#: libpq ``sslmode`` values that make sense for a server across a network.
PostgresTlsMode = Literal["disable", "require", "verify-ca", "verify-full"]
#: Redis ``maxmemory-policy``: what Redis does when it reaches the memory it may use.
EvictionPolicy = Literal[
    "noeviction", "volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-ttl"
]

_HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_PARAMETER = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?$")


def _pinned_image(value: str) -> str:
    """An image reference with an exact version: a tag other than ``latest``, or a digest."""
    if "@" in value:
        if not re.fullmatch(r"[^@\s]+@sha256:[a-f0-9]{64}", value):
            raise ValueError(f"{value!r}: a digest reference is '<repository>@sha256:<64 hex digits>'")
        return value
    name = value.rsplit("/", 1)[-1]
    if ":" not in name or not re.fullmatch(r"[^\s:]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", name):
        raise ValueError(f"{value!r} has no version tag; pin one, such as 'postgres:16.4-bookworm'")
    if name.endswith(":latest"):
        raise ValueError(f"{value!r}: 'latest' is not a pinned version; use a release tag")
    return value


def _host(value: str) -> str:
    """A DNS name (one label is fine: a Service in the namespace) or an IP address."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    labels = value.split(".")
    if len(value) > 253 or not all(_HOST_LABEL.match(label) and len(label) <= 63 for label in labels):
        raise ValueError(f"{value!r} is neither a lowercase DNS name nor an IP address") from None
    return value


#: Each cron field's name and the values it may hold (day of week: 0 and 7 are Sunday).
_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ValueError(f"{value!r} is not a five-field cron schedule such as '30 2 * * *' (numbers, *, -, /, ,)")
    # Kubernetes refuses a CronJob whose schedule is out of range; say so before anything is deployed.
    for field, (name, low, high) in zip(fields, _CRON_RANGES, strict=True):
        for number in re.findall(r"(?<!/)\d+", field):
            if not low <= int(number) <= high:
                raise ValueError(f"{value!r}: {name} {number} is outside {low}-{high}")
        if any(int(step) == 0 for step in re.findall(r"/(\d+)", field)):
            raise ValueError(f"{value!r}: a step of 0 in the {name} field never advances")
    return value


PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
Host = Annotated[str, AfterValidator(_host)]
CronSchedule = Annotated[str, AfterValidator(_cron)]


# --- sizing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerResources:
    """Fully decided requests and limits of one container."""

    cpu_request: Cpu
    memory_request: Memory
    cpu_limit: Cpu
    memory_limit: Memory

    @classmethod
    def of(cls, requests: tuple[str, str], limits: tuple[str, str]) -> ContainerResources:
        """``of(("250m", "512Mi"), ("1", "1Gi"))``: a row of the sizing tables."""
        return cls(Cpu.parse(requests[0]), Memory.parse(requests[1]), Cpu.parse(limits[0]), Memory.parse(limits[1]))

    def overridden(self, override: Resources) -> ContainerResources:
        """These values with whatever ``override`` sets replacing them."""
        requests, limits = override.requests, override.limits
        return ContainerResources(
            cpu_request=requests.cpu or self.cpu_request,
            memory_request=requests.memory or self.memory_request,
            cpu_limit=limits.cpu or self.cpu_limit,
            memory_limit=limits.memory or self.memory_limit,
        )

    def problems(self, key: str) -> list[Problem]:
        """A request above its limit, reported at ``key`` (the stack-file path of the override)."""
        problems: list[Problem] = []
        if self.cpu_request > self.cpu_limit:
            problems.append((f"{key}.requests.cpu",
                             f"cpu request {self.cpu_request} is above its limit {self.cpu_limit}"))
        if self.memory_request > self.memory_limit:
            problems.append((f"{key}.requests.memory",
                             f"memory request {self.memory_request} is above its limit {self.memory_limit}"))
        return problems


@dataclass(frozen=True)
class ServerSizing:
    """One row of a server's sizing table."""

    server: ContainerResources
    exporter: ContainerResources
    storage: Memory
    #: Volume of the backup target (PostgreSQL only; unused by Redis, whose AOF is its persistence).
    backup_storage: Memory | None = None


#: Containers that run for a short while (bootstrap, backup): the same in every profile.
JOB_RESOURCES = ContainerResources.of(("50m", "64Mi"), ("500m", "256Mi"))
BACKUP_RESOURCES = ContainerResources.of(("100m", "256Mi"), ("1", "1Gi"))

POSTGRES_SIZING: dict[SizingProfile, ServerSizing] = {
    SizingProfile.MINIMAL: ServerSizing(
        server=ContainerResources.of(("250m", "1Gi"), ("1", "1Gi")),
        exporter=ContainerResources.of(("20m", "32Mi"), ("200m", "64Mi")),
        storage=Memory.parse("10Gi"),
        backup_storage=Memory.parse("20Gi"),
    ),
    # Memory limit equal to the request: a database killed for memory loses its caches and connections.
    SizingProfile.HIGH_AVAILABILITY: ServerSizing(
        server=ContainerResources.of(("1", "4Gi"), ("4", "4Gi")),
        exporter=ContainerResources.of(("50m", "64Mi"), ("250m", "128Mi")),
        storage=Memory.parse("100Gi"),
        backup_storage=Memory.parse("200Gi"),
    ),
}

REDIS_SIZING: dict[SizingProfile, ServerSizing] = {
    SizingProfile.MINIMAL: ServerSizing(
        server=ContainerResources.of(("100m", "256Mi"), ("500m", "256Mi")),
        exporter=ContainerResources.of(("20m", "32Mi"), ("200m", "64Mi")),
        storage=Memory.parse("2Gi"),
    ),
    SizingProfile.HIGH_AVAILABILITY: ServerSizing(
        server=ContainerResources.of(("250m", "1Gi"), ("1", "1Gi")),
        exporter=ContainerResources.of(("50m", "64Mi"), ("250m", "128Mi")),
        storage=Memory.parse("10Gi"),
    ),
}


# --- shared pieces ------------------------------------------------------------------------------


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

    mode: Mode = Field(default="inCluster", description="inCluster: a StatefulSet this program runs (the default); "
                       "external: a managed server described by `external`.")
    storage_size: Memory | None = Field(
        default=None, description="Size of the data volume; the sizing profile's when unset. Applies to new volumes: "
        "an existing volume is grown by expanding its PersistentVolumeClaim (docs/data.md)."
    )
    storage_class: DnsLabel | None = Field(default=None, description="StorageClass of the data volume; the cluster's "
                                           "default class when unset.")
    resources: Resources = Field(default_factory=Resources, description="Requests and limits of the server "
                                 "container; unset values come from the sizing profile.")
    exporter_resources: Resources = Field(default_factory=Resources, description="Requests and limits of the "
                                          "metrics exporter; unset values come from the sizing profile.")

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
            exporter=row.exporter.overridden(self.exporter_resources),
            storage=self.storage_size or row.storage,
            backup_storage=row.backup_storage,
        )

    def problems(self, profile: SizingProfile) -> list[Problem]:
        """Rules that need the sizing profile, which lives under another key (``environment.sizing``)."""
        sizing = self.sizing(profile)
        return sizing.server.problems(f"{self.key}.resources") + sizing.exporter.problems(
            f"{self.key}.exporterResources")

    def referenced_secrets(self) -> set[str]:
        """Secrets the stack names that this program does not make (they must exist beforehand)."""
        external = self.external_server
        return {external.admin_secret.name} if external else set()

    def _check_mode(self, external: ExternalServer | None) -> None:
        if self.mode == "external" and external is None:
            raise ValueError("mode is external but `external` (host, adminSecret, egressCidrs) is not set")
        if self.mode == "inCluster" and external is not None:
            raise ValueError("`external` is set but mode is inCluster; set mode: external or remove `external`")


# --- PostgreSQL ---------------------------------------------------------------------------------


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


class ObjectStoreTarget(SettingsModel):
    """An S3-compatible bucket backups are copied to (by rclone)."""

    url: str = Field(description="s3://<bucket>/<prefix>: where backups go; one folder per backup.")
    endpoint: str | None = Field(default=None, description="Endpoint of an S3-compatible store (MinIO, R2...); "
                                 "AWS S3 when unset.")
    region: str = Field(default="us-east-1", min_length=1, description="Region of the bucket.")
    credentials_secret: DnsLabel = Field(
        description="Secret in the platform namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
    )
    egress_cidrs: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Address ranges of the store; when unset, the upload may reach any public address on 443.",
    )

    @model_validator(mode="after")
    def _url(self) -> ObjectStoreTarget:
        if not _S3_URL.match(self.url):
            raise ValueError(f"url {self.url!r} is not of the form s3://<bucket>/<prefix>")
        if self.endpoint is not None and not re.fullmatch(r"https://[^\s/]+(/\S*)?", self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r} must be an https:// URL")
        return self

    @property
    def bucket_path(self) -> str:
        """``bucket/prefix`` as rclone names it."""
        return self.url.removeprefix("s3://").rstrip("/")


class PostgresBackupSettings(SettingsModel):
    enabled: bool = Field(default=True, description="A CronJob dumps every database; no backups when false.")
    schedule: CronSchedule = Field(default="30 2 * * *", description="Cron schedule (UTC); 02:30 daily when unset.")
    keep: int = Field(default=7, ge=1, le=366, description="Backups kept (the newest); older ones are deleted "
                      "after a successful backup. 7 when unset.")
    target: Literal["volume", "objectStore"] = Field(
        default="volume", description="volume: a PersistentVolumeClaim of the namespace (the default); "
        "objectStore: an S3-compatible bucket described by `objectStore`."
    )
    storage_size: Memory | None = Field(default=None, description="Size of the backup volume (or of the scratch "
                                        "volume of an upload); the sizing profile's when unset.")
    storage_class: DnsLabel | None = Field(default=None, description="StorageClass of the backup volume; the "
                                           "cluster's default when unset.")
    object_store: ObjectStoreTarget | None = None

    @model_validator(mode="after")
    def _target(self) -> PostgresBackupSettings:
        if self.target == "objectStore" and self.object_store is None:
            raise ValueError("target is objectStore but `objectStore` (url, credentialsSecret) is not set")
        if self.target == "volume" and self.object_store is not None:
            raise ValueError("`objectStore` is set but target is volume; set target: objectStore or remove it")
        return self


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


# --- Redis ----------------------------------------------------------------------------------------


class ExternalRedis(ExternalServer):
    port: int = Field(default=6379, ge=1, le=65535, description="Port of the server.")
    tls: bool = Field(default=True, description="Connect with TLS (rediss://), checked against the system CAs.")
    disable_default_user: bool = Field(
        default=True, description="The bootstrap turns Redis's `default` user off. Set false only when the "
        "provider manages that user itself."
    )


class RedisSettings(ServerSettings):
    """``codai-platform:redis``: the Redis server every service with a cache uses."""

    sizing_table: ClassVar[dict[SizingProfile, ServerSizing]] = REDIS_SIZING
    key: ClassVar[str] = "redis"

    image: PinnedImage = Field(default="redis:7.2.5-alpine", description="Server image (in-cluster), also used by "
                               "the bootstrap job of an external server; Redis 7.2.5 when unset.")
    exporter_image: PinnedImage = Field(default="oliver006/redis_exporter:v1.62.0",
                                        description="Metrics exporter image (in-cluster).")
    maxmemory_percent: int = Field(
        default=80, ge=10, le=95, description="Share of the memory limit Redis may fill with data (maxmemory); the "
        "rest is for the process itself, buffers and AOF rewrites. 80 when unset."
    )
    eviction_policy: EvictionPolicy = Field(
        default="volatile-lru", description="What Redis does when full: volatile-lru (the default) evicts keys "
        "that have a TTL; writes of other keys are then refused rather than silently losing them."
    )
    external: ExternalRedis | None = Field(default=None, description="The managed server; required when mode is "
                                           "external.")

    @model_validator(mode="after")
    def _rules(self) -> RedisSettings:
        self._check_mode(self.external)
        return self


# --- the data tier as a whole ---------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """What the always-running part of the data tier asks of the namespace quota."""

    cpu_requests: Cpu
    memory_requests: Memory
    memory_limits: Memory
    storage_requests: Memory
    pods: int
    persistent_volume_claims: int


def footprint(postgres: PostgresSettings, redis: RedisSettings, profile: SizingProfile) -> Footprint:
    """Requests of the data tier's servers, exporters and volumes (jobs come and go: see docs/data.md)."""
    cpu, memory, limits, storage, pods, claims = 0, 0, 0, 0, 0, 0
    for settings in (postgres, redis):
        if not settings.in_cluster:
            continue
        sizing = settings.sizing(profile)
        cpu += sizing.server.cpu_request.millis + sizing.exporter.cpu_request.millis
        memory += sizing.server.memory_request.bytes + sizing.exporter.memory_request.bytes
        limits += sizing.server.memory_limit.bytes + sizing.exporter.memory_limit.bytes
        storage += sizing.storage.bytes
        pods += 1
        claims += 1
    backup = postgres.backup
    if backup.enabled and backup.target == "volume":
        storage += backup_storage(postgres, profile).bytes
        claims += 1
    return Footprint(Cpu(cpu), Memory(memory), Memory(limits), Memory(storage), pods, claims)


def backup_storage(postgres: PostgresSettings, profile: SizingProfile) -> Memory:
    size = postgres.backup.storage_size or postgres.sizing_table[profile].backup_storage
    assert size is not None  # every PostgreSQL row sets it
    return size
