"""PostgreSQL's backup CronJob: pg_dump of every service database to a volume, or through a
scratch volume to an object store (docs/data.md, docs/restore-postgres.md).

The dump runs the server's own image with ``scripts/backup.sh``; an object-store target adds
rclone running ``scripts/upload.sh``. Either way the job reaches the server like a client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pulumi_kubernetes as k8s
from pulumi_kubernetes.batch.v1 import CronJobSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)
from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict

from components.data import job_scripts, jobs
from components.data.pod_parts import Pod, config_volume, container, secret_env_skips, volume_claim
from components.network import ip_block_egress, public_https_egress_rule
from components.security import pinned_by_tag_skips
from settings.data import BACKUP_RESOURCES, JOB_RESOURCES, ObjectStoreTarget, SecretReference, backup_storage

if TYPE_CHECKING:
    from components.data.postgres import Postgres

BACKUP_DIR = "/backups"
#: Copies backups to an object store (objectStore target only).
RCLONE_IMAGE = "rclone/rclone:1.68.2"
BACKUP_DEADLINE_SECONDS = 4 * 3600


def backup_cron_job(postgres: Postgres, admin: SecretReference) -> None:
    """The backup CronJob and its NetworkPolicy, for the target the stack names."""
    settings = postgres.pg.backup
    env, admin_volume, admin_mount = postgres.connection_env(admin)
    mounts: list[VolumeMountArgsDict] = [{"name": "scripts", "mount_path": job_scripts.MOUNT_PATH, "read_only": True},
                                         {"name": "backups", "mount_path": BACKUP_DIR}]
    dump_env = {**env, "BACKUP_DIR": BACKUP_DIR, "BACKUP_KEEP": str(settings.keep),
                "BACKUP_DATABASES": " ".join(sorted(postgres.databases.values()))}
    volumes: list[VolumeArgsDict] = [config_volume("scripts", postgres.scripts_name), admin_volume]
    claim = volume_claim(backup_storage(postgres.pg, postgres.args.sizing), settings.storage_class)
    extra_egress: list[NetworkPolicyEgressRuleArgsDict] = []
    store = settings.object_store
    dump_mounts = [*mounts, admin_mount]
    if store is None:
        pod = _volume_target_pod(postgres, claim, volumes, _dump(postgres, dump_env, dump_mounts))
    else:
        dump = _dump(postgres, {**dump_env, "BACKUP_KEEP": "1"}, dump_mounts)
        pod = _object_store_pod(postgres, claim, volumes, dump, _upload(postgres, store, mounts))
        extra_egress.append(ip_block_egress(store.egress_cidrs, 443) if store.egress_cidrs
                            else public_https_egress_rule())
    images = [postgres.pg.image] + ([RCLONE_IMAGE] if store else [])
    k8s.batch.v1.CronJob(
        f"{postgres.name}-backup-cronjob",
        metadata=postgres.meta(f"{postgres.name}-backup", "backup",
                               skips=[*pinned_by_tag_skips(*images), *secret_env_skips(pod)]),
        spec=_backup_schedule(postgres, pod),
        opts=postgres.child_opts(),
    )
    jobs.network_policy(postgres, "backup", extra_egress)


def _volume_target_pod(postgres: Postgres, claim: PersistentVolumeClaimSpecArgsDict, volumes: list[VolumeArgsDict],
                       dump: ContainerArgsDict) -> Pod:
    """The dumps go to a volume of their own, which outlives the stack like the server's."""
    claim_object = k8s.core.v1.PersistentVolumeClaim(
        f"{postgres.name}-backups-pvc",
        metadata=postgres.meta(f"{postgres.name}-backups", "backup"),
        spec=claim,
        opts=postgres.child_opts(**postgres.stateful_options()),
    )
    backups: VolumeArgsDict = {"name": "backups", "persistent_volume_claim": {"claim_name": claim_object.metadata.name}}
    return Pod(containers=[dump], volumes=[*volumes, backups])


def _object_store_pod(postgres: Postgres, claim: PersistentVolumeClaimSpecArgsDict, volumes: list[VolumeArgsDict],
                      dump: ContainerArgsDict, upload: ContainerArgsDict) -> Pod:
    """The dump goes to a scratch volume that lives as long as the pod; only the bucket keeps backups."""
    backups: VolumeArgsDict = {"name": "backups", "ephemeral": {"volume_claim_template": {
        "metadata": {"labels": postgres.labels("backup")}, "spec": claim}}}
    return Pod(init_containers=[dump], containers=[upload], volumes=[*volumes, backups])


def _backup_schedule(postgres: Postgres, pod: Pod) -> CronJobSpecArgsDict:
    settings = postgres.pg.backup
    return {
        "schedule": settings.schedule,
        "time_zone": "Etc/UTC",
        # One backup at a time; a missed run is started late (within an hour), not skipped.
        "concurrency_policy": "Forbid",
        "starting_deadline_seconds": 3600,
        "successful_jobs_history_limit": 3,
        "failed_jobs_history_limit": 3,
        "job_template": {
            "metadata": {"labels": postgres.labels("backup")},
            "spec": {
                "backoff_limit": 1,
                "active_deadline_seconds": BACKUP_DEADLINE_SECONDS,
                "template": jobs.job_pod(postgres, "backup", pod),
            },
        },
    }


def _upload(postgres: Postgres, store: ObjectStoreTarget, mounts: Sequence[VolumeMountArgsDict]) -> ContainerArgsDict:
    """rclone copying the dumps to the bucket, keeping the newest ``keep`` there."""
    upload_env = {
        "BACKUP_DIR": BACKUP_DIR, "BACKUP_KEEP": str(postgres.pg.backup.keep),
        "BACKUP_REMOTE": f":s3:{store.bucket_path}",
        # rclone's S3 backend from the environment: keys from the credentials Secret.
        "RCLONE_S3_PROVIDER": "Other" if store.endpoint else "AWS", "RCLONE_S3_ENV_AUTH": "true",
        "RCLONE_S3_REGION": store.region, "RCLONE_CONFIG": "/tmp/rclone.conf", "HOME": "/tmp",
    }
    if store.endpoint:
        upload_env["RCLONE_S3_ENDPOINT"] = store.endpoint
    return container("upload", RCLONE_IMAGE, JOB_RESOURCES, command=job_scripts.command("upload.sh"),
                     env=upload_env, env_from_secrets=[store.credentials_secret], mounts=mounts)


def _dump(postgres: Postgres, env: Mapping[str, str], mounts: Sequence[VolumeMountArgsDict]) -> ContainerArgsDict:
    return container("backup", postgres.pg.image, BACKUP_RESOURCES, command=job_scripts.command("backup.sh"),
                     env=env, mounts=mounts)
