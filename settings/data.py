"""Stack settings of the shared data services: PostgreSQL and Redis.

Each is either run in the cluster (``inCluster``, the default: a StatefulSet this program
deploys) or a managed server the stack points at (``external``). Sizing defaults come from
one table per server and sizing profile (:data:`POSTGRES_SIZING`, :data:`REDIS_SIZING`);
a stack overrides single values. Stack-file keys are ``codai-platform:postgres`` and
``codai-platform:redis``.

This module gathers the data tier's public names from the modules that define them:
:mod:`settings.data_values` (validated strings), :mod:`settings.data_sizing` (sizing tables),
:mod:`settings.data_server` (what both servers share), :mod:`settings.postgres` and
:mod:`settings.postgres_backup`, :mod:`settings.redis`, and :mod:`settings.data_footprint`.
"""

from settings.data_footprint import Footprint, footprint
from settings.data_server import ExternalServer, Mode, SecretReference, ServerSettings
from settings.data_sizing import (
    BACKUP_RESOURCES,
    JOB_RESOURCES,
    POSTGRES_SIZING,
    REDIS_SIZING,
    SENTINEL_RESOURCES,
    ContainerResources,
    ServerSizing,
)
from settings.data_values import CronSchedule, Host, PinnedImage
from settings.postgres import (
    POSTGRES_OWNED_PARAMETERS,
    ExternalPostgres,
    PostgresSettings,
    PostgresTlsMode,
    backup_storage,
)
from settings.postgres_backup import ObjectStoreTarget, PostgresBackupSettings
from settings.redis import EvictionPolicy, ExternalRedis, RedisSettings

__all__ = [
    "BACKUP_RESOURCES",
    "JOB_RESOURCES",
    "POSTGRES_OWNED_PARAMETERS",
    "POSTGRES_SIZING",
    "REDIS_SIZING",
    "SENTINEL_RESOURCES",
    "ContainerResources",
    "CronSchedule",
    "EvictionPolicy",
    "ExternalPostgres",
    "ExternalRedis",
    "ExternalServer",
    "Footprint",
    "Host",
    "Mode",
    "ObjectStoreTarget",
    "PinnedImage",
    "PostgresBackupSettings",
    "PostgresSettings",
    "PostgresTlsMode",
    "RedisSettings",
    "SecretReference",
    "ServerSettings",
    "ServerSizing",
    "backup_storage",
    "footprint",
]
