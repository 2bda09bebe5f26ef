"""PostgreSQL backup settings: schedule, retention, and the volume or bucket the dumps go to."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, IPvAnyNetwork, model_validator

from settings.base import DnsLabel, SettingsModel
from settings.data_values import CronSchedule
from settings.quantities import Memory

_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?$")


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
