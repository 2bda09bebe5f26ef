"""PostgreSQL backup settings: schedule, retention, and where backups go.

In-cluster, CloudNativePG archives every WAL segment and takes base backups into the object store
(``retention`` applies); an external server is dumped by a CronJob to a volume or the object store
(``keep`` applies). See docs/data.md and docs/restore-postgres.md.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, IPvAnyNetwork, model_validator

from settings.base import DnsLabel, SettingsModel, checked
from settings.data_values import CronSchedule
from settings.quantities import Memory

#: CloudNativePG's pattern for a Cluster's ``spec.backup.retentionPolicy``: days, weeks or months.
_RETENTION = re.compile(r"^[1-9][0-9]*[dwm]$")
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?$")


def s3_url(value: str) -> str:
    """``s3://bucket`` or ``s3://bucket/prefix``: where backups go, for the dumps and Barman Cloud alike."""
    if not _S3_URL.match(value):
        raise ValueError(f"{value!r} is not of the form s3://<bucket>/<prefix>")
    return value


def retention_policy(value: str) -> str:
    """How far back point-in-time recovery reaches, as CloudNativePG's ``retentionPolicy`` reads it."""
    if not _RETENTION.match(value):
        raise ValueError(f"{value!r} is not a number of days, weeks or months such as '30d', '4w' or '6m'")
    return value


Retention = Annotated[str, AfterValidator(retention_policy)]


class ObjectStoreTarget(SettingsModel):
    """An S3-compatible bucket backups go to: CloudNativePG's Barman Cloud (in-cluster), rclone (external)."""

    url: str = Field(description="s3://<bucket>/<prefix>: where backups go. In-cluster, the Cluster archives under "
                     "<prefix>/postgres-cluster; external, one folder per dump.")
    endpoint: str | None = Field(default=None, description="Endpoint of an S3-compatible store (MinIO, R2...); "
                                 "AWS S3 when unset.")
    region: str = Field(default="us-east-1", min_length=1, description="Region of the bucket, for the upload of "
                        "an external server's dumps; in-cluster, Barman Cloud follows the store's redirect to it.")
    credentials_secret: DnsLabel = Field(
        description="Secret in the platform namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
    )
    egress_cidrs: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Address ranges of the store; when unset, the upload may reach any public address on 443.",
    )

    @model_validator(mode="after")
    def _url(self) -> ObjectStoreTarget:
        checked("url", s3_url, self.url)
        if self.endpoint is not None and not re.fullmatch(r"https://[^\s/]+(/\S*)?", self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r} must be an https:// URL")
        return self

    @property
    def bucket_path(self) -> str:
        """``bucket/prefix`` as rclone names it."""
        return self.url.removeprefix("s3://").rstrip("/")


class PostgresBackupSettings(SettingsModel):
    enabled: bool = Field(default=True, description="In-cluster: continuous WAL archiving and scheduled base "
                          "backups; external: a CronJob dumps every database. No backups when false.")
    schedule: CronSchedule = Field(default="30 2 * * *", description="Cron schedule (UTC) of the base backups "
                                   "(in-cluster) or the dumps (external); 02:30 daily when unset.")
    retention: Retention = Field(default="30d", description="In-cluster: how far back "
                                "point-in-time recovery reaches; older base backups and WAL are deleted from the "
                                "object store. Days, weeks or months, such as 30d (the default), 8w or 6m.")
    keep: int = Field(default=7, ge=1, le=366, description="External server: dumps kept (the newest); older ones "
                      "are deleted after a successful dump. 7 when unset.")
    target: Literal["volume", "objectStore"] = Field(
        default="volume", description="objectStore: an S3-compatible bucket described by `objectStore` (required "
        "in-cluster, so that losing the cluster does not lose its backups); volume: a PersistentVolumeClaim of the "
        "namespace (the default, external servers only)."
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
