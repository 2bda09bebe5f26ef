"""CloudNativePG backups: the object store a Cluster archives to, and the nightly ScheduledBackup.

Pure dicts, like ``cnpg_specs.py``: nothing here registers a Pulumi resource, and the tests
check every output against the vendored CRDs (``vendor/crds/cloudnative-pg``, v1.29.1).

The store is CloudNativePG's in-tree ``spec.backup.barmanObjectStore``: the server ships every WAL
segment and takes base backups with Barman Cloud, which is what point-in-time recovery
(docs/restore-postgres.md) replays. CloudNativePG deprecated this in-tree integration in 1.26 in
favour of the Barman Cloud plugin (CNPG-I), and says ``spec.backup.retentionPolicy`` goes with it.
We still use it because the plugin is a separate operator with its own ``ObjectStore`` CRD, and
neither is vendored here: only the operator's own CRDs of 1.29.1 are, and in them the in-tree
fields are present and served. The 1.29.1 operator's webhook answers every such Cluster with a
deprecation warning announcing their removal in a later release: check them on every version bump.
Moving to the plugin means vendoring its CRD and operator first; its ``ObjectStore`` takes these
same fields under ``spec.configuration``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from settings.base import checked, dns_label, secret_key
from settings.postgres_backup import retention_policy, s3_url

#: ``targetTime`` with its offset: PostgreSQL reads a bare time in the server's zone, which is easy to get wrong.
_TARGET_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)$")
#: What the CRD accepts: WAL files may use more codecs than base backups (tar streams) do.
WAL_COMPRESSIONS = ("bzip2", "gzip", "lz4", "snappy", "xz", "zstd")
DATA_COMPRESSIONS = ("bzip2", "gzip", "snappy")
#: The keys of the credentials Secret: the names the AWS SDK and the dump upload already use.
ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"


def check_name(what: str, name: str) -> str:
    """``name`` if it is a valid name of a Cluster, Pooler or Secret (a DNS label, as the settings say),
    else a ValueError naming ``what`` it is."""
    return checked(what, dns_label, name)


@dataclass(frozen=True)
class BarmanStore:
    """An S3-compatible bucket a Cluster archives its WAL and base backups to (or recovers from).

    ``credentials_secret`` holds ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (the same keys
    as the dumps' upload); ``region_key`` names a key of that Secret holding the bucket's region,
    when the store needs one. ``server_name`` is the folder under ``destination_path``: the
    Cluster's name unless set, and the source Cluster's name when recovering from its backups.
    """

    destination_path: str
    credentials_secret: str
    endpoint_url: str | None = None
    region_key: str | None = None
    retention: str = "30d"
    wal_compression: str = "gzip"
    data_compression: str = "gzip"
    server_name: str | None = None

    def __post_init__(self) -> None:
        checked("backup destination", s3_url, self.destination_path)
        if self.endpoint_url is not None:
            url = urlsplit(self.endpoint_url)
            if url.scheme not in ("http", "https") or not url.netloc or any(c.isspace() for c in self.endpoint_url):
                raise ValueError(f"backup endpoint {self.endpoint_url!r} must be an http:// or https:// URL")
        check_name("credentials Secret", self.credentials_secret)
        if self.region_key is not None:
            checked("region key", secret_key, self.region_key)
        checked("retention", retention_policy, self.retention)
        if self.wal_compression not in WAL_COMPRESSIONS:
            raise ValueError(f"WAL compression {self.wal_compression!r} is not one of {', '.join(WAL_COMPRESSIONS)}")
        if self.data_compression not in DATA_COMPRESSIONS:
            raise ValueError(f"data compression {self.data_compression!r} is not one of "
                             f"{', '.join(DATA_COMPRESSIONS)} (base backups accept fewer codecs than WAL)")
        if self.server_name is not None:
            check_name("server name", self.server_name)


def barman_object_store(store: BarmanStore) -> dict[str, Any]:
    """``barmanObjectStore``: the same shape in ``spec.backup`` and in ``spec.externalClusters[]``."""
    secret = store.credentials_secret
    credentials: dict[str, Any] = {
        "accessKeyId": {"name": secret, "key": ACCESS_KEY_ID},
        "secretAccessKey": {"name": secret, "key": SECRET_ACCESS_KEY},
    }
    if store.region_key:
        credentials["region"] = {"name": secret, "key": store.region_key}
    result: dict[str, Any] = {"destinationPath": store.destination_path}
    if store.endpoint_url:
        # Only for a store other than AWS S3 (MinIO, R2, Ceph...): barman-cloud finds AWS by itself.
        result["endpointURL"] = store.endpoint_url
    if store.server_name:
        result["serverName"] = store.server_name
    result["s3Credentials"] = credentials
    # Without these the bucket holds WAL and base backups uncompressed.
    result["wal"] = {"compression": store.wal_compression}
    result["data"] = {"compression": store.data_compression}
    return result


def backup_section(store: BarmanStore) -> dict[str, Any]:
    """A Cluster's ``spec.backup``: where it archives, and how long base backups and WAL are kept."""
    return {"retentionPolicy": store.retention, "barmanObjectStore": barman_object_store(store)}


def recovery_sections(source: BarmanStore, target_time: str) -> dict[str, Any]:
    """A Cluster's ``bootstrap`` and ``externalClusters`` that recover ``source`` up to ``target_time``.

    The operator restores the newest base backup finished before ``target_time``, replays the
    archived WAL up to it and promotes. ``source.server_name`` names the Cluster recovered from:
    its folder in the bucket.
    """
    if source.server_name is None:
        raise ValueError("the source store must name the Cluster recovered from (server_name)")
    if not _TARGET_TIME.match(target_time):
        raise ValueError(f"target time {target_time!r} must be a timestamp with its offset, such as "
                         "'2025-01-01 12:00:00.000000+00'")
    origin = f"{source.server_name}-origin"
    return {
        "bootstrap": {"recovery": {"source": origin, "recoveryTarget": {"targetTime": target_time}}},
        "externalClusters": [{"name": origin, "barmanObjectStore": barman_object_store(source)}],
    }


def six_field_cron(schedule: str) -> str:
    """The settings' 5-field cron as CloudNativePG reads it: seconds first, at second 0.

    CloudNativePG parses ``ScheduledBackup.spec.schedule`` with robfig/cron's seconds field, so
    the CronJob's ``30 2 * * *`` given as is would mean "second 30 of minute 2 of every hour...".
    """
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"schedule {schedule!r} has {len(fields)} fields: write the 5-field cron the settings "
                         "use (minute hour day-of-month month day-of-week), such as '30 2 * * *'")
    return " ".join(["0", *fields])


def scheduled_backup_spec(cluster: str, schedule: str, *, immediate: bool = True) -> dict[str, Any]:
    """A ``ScheduledBackup``'s spec: a base backup of ``cluster`` to its object store on ``schedule``.

    ``immediate`` takes the first base backup as soon as the object is created: until one exists,
    the archived WAL has nothing to be replayed onto, so no point in time can be recovered.
    """
    return {
        "cluster": {"name": check_name("cluster", cluster)},
        "schedule": six_field_cron(schedule),
        # The Backup objects it creates belong to it, so removing it removes them instead of leaving
        # orphans. They are records only: the files in the bucket go by the retention policy alone.
        "backupOwnerReference": "self",
        "method": "barmanObjectStore",
        "immediate": immediate,
    }
