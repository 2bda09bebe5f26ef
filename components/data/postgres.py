"""PostgreSQL for the platform: one server, one database and one login role per service.

In-cluster: a StatefulSet of the official image with its volume, a tuned configuration,
client, headless and metrics Services, a PodDisruptionBudget, the exporter and its
ServiceMonitor. External: a managed server described in the stack. Either way a bootstrap
Job creates every service's role and database, each service gets a Secret with its own
``DATABASE_URL``, and a CronJob takes backups (docs/data.md, docs/restore-postgres.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.batch.v1 import CronJobSpecArgsDict
from pulumi_kubernetes.core.v1 import ContainerArgsDict, VolumeArgsDict, VolumeMountArgsDict
from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict

from components.data import backup, config_files, sql
from components.data.common import (
    ADMIN_DIR,
    DataArgs,
    DataComponent,
    Pod,
    Port,
    config_volume,
    container,
    exec_probe,
    exporter_probes,
    plain_digest,
    secret_volume,
    volume_claim,
)
from components.network import ip_block_egress, public_https_egress_rule
from components.scraping import METRICS_PORT_NAME
from components.security import pinned_by_tag_skips
from services.model import Dependency, ServiceSpec
from settings.data import (
    BACKUP_RESOURCES,
    JOB_RESOURCES,
    ObjectStoreTarget,
    PostgresSettings,
    SecretReference,
    backup_storage,
)
from settings.quantities import Memory

#: The in-cluster server's administrator (the image's POSTGRES_USER).
ADMIN_USER = "postgres"
SOCKET_DIR = "/var/run/postgresql"
CONFIG_DIR = "/etc/postgresql"
DATA_MOUNT = "/var/lib/postgresql/data"
#: A folder inside the volume: the volume's root may hold lost+found, and initdb wants an empty directory.
PGDATA = f"{DATA_MOUNT}/pgdata"
MONITOR_DIR = "/run/codai/monitor"
PASSWORDS_DIR = "/run/codai/passwords"
BOOTSTRAP_DIR = "/bootstrap"
BACKUP_DIR = "/backups"
#: Copies backups to an object store (objectStore target only).
RCLONE_IMAGE = "rclone/rclone:1.68.2"
BACKUP_DEADLINE_SECONDS = 4 * 3600


PostgresArgs = DataArgs[PostgresSettings]


class Postgres(DataComponent):
    """The platform's PostgreSQL; ``binding_for(service)`` hands each client its Secret and egress rule."""

    dependency = Dependency.POSTGRES
    role = "database"
    port = Port("postgres", 5432)
    metrics_port = Port(METRICS_PORT_NAME, 9187)

    def __init__(
        self,
        name: str,
        args: PostgresArgs,
        opts: pulumi.ResourceOptions | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__("codai:data:Postgres", name, args, opts=opts, depends_on=depends_on)
        self.pg = args.settings
        self.databases = {spec.name: sql.identifier(spec.name) for spec in self.clients}

        passwords = self.client_secrets(self._client_data)
        admin = self._admin()
        scripts = self.scripts_config_map("bootstrap-postgres.sh", "backup.sh", "restore.sh", "upload.sh")
        self.scripts_name = scripts.metadata.name
        prerequisites: list[pulumi.Resource] = [scripts, *self.secrets.values()]

        plan = sql.BootstrapPlan(
            services=[spec.name for spec in self.clients],
            password_dir=PASSWORDS_DIR,
            connection_limit=self.pg.connection_limit_per_service,
            monitor_role=sql.MONITOR_ROLE if self.pg.in_cluster else None,
            close_shared_databases=self.pg.in_cluster,
        )
        password_files = {self.databases[service]: (self.client_secret_name(service), "PGPASSWORD")
                          for service in passwords}
        content: list[pulumi.Input[str]] = [*passwords.values()]
        if self.pg.in_cluster:
            monitor_password = self.password("monitor").result
            monitor = self.secret("monitor-secret", f"{name}-monitor", METRICS_PORT_NAME,
                                  {"username": sql.MONITOR_ROLE, "password": monitor_password})
            password_files[sql.MONITOR_ROLE] = (f"{name}-monitor", "password")
            content.append(monitor_password)
            self.server_services()
            self.statefulset = self._server(admin)
            self.server_network_policy(["bootstrap", "backup"])
            self.service_monitor()
            prerequisites += [monitor, self.statefulset]

        bootstrap_sql = sql.bootstrap_sql(plan)
        bootstrap_config = k8s.core.v1.ConfigMap(
            f"{name}-bootstrap-config",
            metadata=self.meta(f"{name}-bootstrap", "bootstrap"),
            data={"bootstrap.sql": bootstrap_sql},
            opts=self.child_opts(),
        )
        self.bootstrap = self.bootstrap_job(
            self._bootstrap_pod(admin, password_files),
            [bootstrap_sql, self.pg.image, self.host, admin.name, *content],
            depends_on=[*prerequisites, bootstrap_config],
            images=[self.pg.image],
        )
        self.job_network_policy("bootstrap")
        if self.pg.backup.enabled:
            self._backup(admin)
        self.register_outputs({"host": self.host, "port": self.server_port, "databases": self.databases})

    # --- credentials ---------------------------------------------------------------------------

    def _client_data(self, spec: ServiceSpec, password: pulumi.Output[str]) -> Mapping[str, pulumi.Input[str]]:
        """DATABASE_URL and the libpq variables, so both URL-style and libpq-style clients work."""
        database = sql.identifier(spec.name)
        options = "&".join(f"{key}={value}" for key, value in self._tls_options().items())
        return {
            "DATABASE_URL": pulumi.Output.concat(
                "postgresql://", database, ":", password, "@", self.host, ":", str(self.server_port), "/", database,
                "?", options),
            "PGHOST": self.host,
            "PGPORT": str(self.server_port),
            "PGDATABASE": database,
            "PGUSER": database,
            "PGPASSWORD": password,
            **{f"PG{key.upper()}": value for key, value in self._tls_options().items()},
        }

    def _tls_options(self) -> dict[str, str]:
        """libpq TLS options: an in-cluster server has no certificate; an external one is checked."""
        external = self.pg.external
        if external is None:
            return {"sslmode": "disable"}
        options: dict[str, str] = {"sslmode": external.tls_mode}
        if external.tls_mode.startswith("verify"):
            options["sslrootcert"] = "system"  # the image's CA bundle (libpq 16 and later)
        return options

    def _admin(self) -> SecretReference:
        """The administrator's Secret: generated for an in-cluster server, the stack's for an external one."""
        if self.pg.external is not None:
            return self.pg.external.admin_secret
        password = self.password("admin").result
        self.secret("admin-secret", f"{self.name}-admin", "credentials", {"username": ADMIN_USER, "password": password})
        return SecretReference(name=f"{self.name}-admin")

    def _connection_env(self, admin: SecretReference) -> tuple[dict[str, str], VolumeArgsDict, VolumeMountArgsDict]:
        """libpq environment of a job connecting as the administrator, and the Secret files it reads."""
        external = self.pg.external
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.server_port),
            "PGDATABASE": external.admin_database if external else "postgres",
            "PGUSER_FILE": f"{ADMIN_DIR}/username",
            "PGPASSWORD_FILE": f"{ADMIN_DIR}/password",
            "PGCONNECT_TIMEOUT": "10",
            **{f"PG{key.upper()}": value for key, value in self._tls_options().items()},
        }
        return env, *self.admin_files(admin)

    # --- the in-cluster server -----------------------------------------------------------------------

    def _server(self, admin: SecretReference) -> k8s.apps.v1.StatefulSet:
        memory_limit = self.sizing.server.memory_limit
        paths = config_files.PostgresPaths(hba_file=f"{CONFIG_DIR}/pg_hba.conf", socket_dir=SOCKET_DIR,
                                           port=self.port.number)
        files = {
            "postgresql.conf": config_files.postgresql_conf(
                paths, memory_limit=memory_limit, max_connections=self.pg.max_connections,
                parameters=self.pg.parameters),
            "pg_hba.conf": config_files.pg_hba_conf(ADMIN_USER),
        }
        config = k8s.core.v1.ConfigMap(
            f"{self.name}-config",
            metadata=self.meta(f"{self.name}-config", self.role),
            data=files,
            opts=self.child_opts(),
        )
        ready = exec_probe(["pg_isready", "-q", "-h", SOCKET_DIR, "-p", str(self.port.number), "-U", ADMIN_USER,
                            "-d", "postgres"], period=10, failures=6)
        server = container(
            "postgres", self.pg.image, self.sizing.server,
            args=["postgres", "-c", f"config_file={CONFIG_DIR}/postgresql.conf"],
            env={
                "PGDATA": PGDATA,
                "POSTGRES_USER": ADMIN_USER,
                # Read once, when the image initialises an empty volume.
                "POSTGRES_PASSWORD_FILE": f"{ADMIN_DIR}/password",
                "POSTGRES_INITDB_ARGS": "--encoding=UTF8 --data-checksums",
            },
            ports=[self.port],
            mounts=[
                {"name": "data", "mount_path": DATA_MOUNT},
                {"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
                {"name": "admin", "mount_path": ADMIN_DIR, "read_only": True},
                {"name": "run", "mount_path": SOCKET_DIR},
                {"name": "shm", "mount_path": "/dev/shm"},
            ],
            # A first start (initdb) or a crash recovery may take minutes: the startup probe allows 10.
            probes={"startup": {**ready, "period_seconds": 5, "failure_threshold": 120},
                    "liveness": ready, "readiness": {**ready, "period_seconds": 5, "failure_threshold": 3}},
        )
        # Parallel queries exchange data through /dev/shm, which container runtimes cap at 64Mi.
        shm = Memory(min(memory_limit.bytes // 4, 2**30))
        pod = Pod(
            containers=[server, self._exporter()],
            volumes=[
                config_volume("config", config.metadata.name),
                secret_volume("admin", admin.name, {admin.password_key: "password"}),
                secret_volume("monitor", f"{self.name}-monitor", {"password": "password"}),
                {"name": "run", "empty_dir": {"size_limit": "16Mi"}},
                {"name": "shm", "empty_dir": {"medium": "Memory", "size_limit": str(shm)}},
            ],
        )
        return self.stateful_set(pod, checksum=plain_digest(*files.values()), grace_seconds=120,
                                 skips=pinned_by_tag_skips(self.pg.image, self.pg.exporter_image))

    def _exporter(self) -> ContainerArgsDict:
        """postgres_exporter, logging in over localhost as the monitor role."""
        return container(
            "exporter", self.pg.exporter_image, self.sizing.exporter,
            env={"DATA_SOURCE_URI": f"localhost:{self.port.number}/postgres?sslmode=disable",
                 "DATA_SOURCE_USER": sql.MONITOR_ROLE, "DATA_SOURCE_PASS_FILE": f"{MONITOR_DIR}/password"},
            ports=[self.metrics_port],
            mounts=[{"name": "monitor", "mount_path": MONITOR_DIR, "read_only": True}],
            probes=exporter_probes(),
        )

    # --- jobs -----------------------------------------------------------------------------------------

    def _bootstrap_pod(self, admin: SecretReference, password_files: Mapping[str, tuple[str, str]]) -> Pod:
        env, admin_volume, admin_mount = self._connection_env(admin)
        passwords: VolumeArgsDict = {"name": "passwords", "projected": {"default_mode": 0o440, "sources": [
            {"secret": {"name": secret, "items": [{"key": key, "path": role}]}}
            for role, (secret, key) in sorted(password_files.items())
        ]}}
        job = container(
            "bootstrap", self.pg.image, JOB_RESOURCES,
            command=backup.command("bootstrap-postgres.sh", f"{BOOTSTRAP_DIR}/bootstrap.sql"),
            env=env,
            mounts=[{"name": "scripts", "mount_path": backup.MOUNT_PATH, "read_only": True},
                    {"name": "bootstrap", "mount_path": BOOTSTRAP_DIR, "read_only": True},
                    {"name": "passwords", "mount_path": PASSWORDS_DIR, "read_only": True}, admin_mount],
        )
        return Pod(containers=[job], volumes=[
            config_volume("scripts", self.scripts_name), config_volume("bootstrap", f"{self.name}-bootstrap"),
            passwords, admin_volume])

    def _backup(self, admin: SecretReference) -> None:
        """The backup CronJob: pg_dump of every service database to a volume, or through one to a bucket."""
        settings = self.pg.backup
        env, admin_volume, admin_mount = self._connection_env(admin)
        claim = volume_claim(backup_storage(self.pg, self.args.sizing), settings.storage_class)
        mounts: list[VolumeMountArgsDict] = [{"name": "scripts", "mount_path": backup.MOUNT_PATH, "read_only": True},
                                             {"name": "backups", "mount_path": BACKUP_DIR}]
        dump_env = {**env, "BACKUP_DIR": BACKUP_DIR, "BACKUP_KEEP": str(settings.keep),
                    "BACKUP_DATABASES": " ".join(sorted(self.databases.values()))}
        volumes: list[VolumeArgsDict] = [config_volume("scripts", self.scripts_name), admin_volume]
        extra_egress: list[NetworkPolicyEgressRuleArgsDict] = []
        store = settings.object_store
        if store is None:
            claim_object = k8s.core.v1.PersistentVolumeClaim(
                f"{self.name}-backups-pvc",
                metadata=self.meta(f"{self.name}-backups", "backup"),
                spec=claim,
                opts=self.child_opts(**self.stateful_options()),
            )
            volumes.append({"name": "backups", "persistent_volume_claim": {"claim_name": claim_object.metadata.name}})
            pod = Pod(containers=[self._dump(dump_env, [*mounts, admin_mount])], volumes=volumes)
        else:
            # The dump goes to a scratch volume that lives as long as the pod; only the bucket keeps backups.
            volumes.append({"name": "backups", "ephemeral": {"volume_claim_template": {
                "metadata": {"labels": self.labels("backup")}, "spec": claim}}})
            pod = Pod(init_containers=[self._dump({**dump_env, "BACKUP_KEEP": "1"}, [*mounts, admin_mount])],
                      containers=[self._upload(store, mounts)], volumes=volumes)
            extra_egress.append(ip_block_egress(store.egress_cidrs, 443) if store.egress_cidrs
                                else public_https_egress_rule())
        images = [self.pg.image] + ([RCLONE_IMAGE] if store else [])
        k8s.batch.v1.CronJob(
            f"{self.name}-backup-cronjob",
            metadata=self.meta(f"{self.name}-backup", "backup",
                               skips=[*pinned_by_tag_skips(*images), *self.secret_env_skips(pod)]),
            spec=self._backup_schedule(pod),
            opts=self.child_opts(),
        )
        self.job_network_policy("backup", extra_egress)

    def _backup_schedule(self, pod: Pod) -> CronJobSpecArgsDict:
        settings = self.pg.backup
        return {
            "schedule": settings.schedule,
            "time_zone": "Etc/UTC",
            # One backup at a time; a missed run is started late (within an hour), not skipped.
            "concurrency_policy": "Forbid",
            "starting_deadline_seconds": 3600,
            "successful_jobs_history_limit": 3,
            "failed_jobs_history_limit": 3,
            "job_template": {
                "metadata": {"labels": self.labels("backup")},
                "spec": {
                    "backoff_limit": 1,
                    "active_deadline_seconds": BACKUP_DEADLINE_SECONDS,
                    "template": self.job_pod("backup", pod),
                },
            },
        }

    def _upload(self, store: ObjectStoreTarget, mounts: Sequence[VolumeMountArgsDict]) -> ContainerArgsDict:
        """rclone copying the dumps to the bucket, keeping the newest ``keep`` there."""
        upload_env = {
            "BACKUP_DIR": BACKUP_DIR, "BACKUP_KEEP": str(self.pg.backup.keep),
            "BACKUP_REMOTE": f":s3:{store.bucket_path}",
            # rclone's S3 backend from the environment: keys from the credentials Secret.
            "RCLONE_S3_PROVIDER": "Other" if store.endpoint else "AWS", "RCLONE_S3_ENV_AUTH": "true",
            "RCLONE_S3_REGION": store.region, "RCLONE_CONFIG": "/tmp/rclone.conf", "HOME": "/tmp",
        }
        if store.endpoint:
            upload_env["RCLONE_S3_ENDPOINT"] = store.endpoint
        return container("upload", RCLONE_IMAGE, JOB_RESOURCES, command=backup.command("upload.sh"),
                         env=upload_env, env_from_secrets=[store.credentials_secret], mounts=mounts)

    def _dump(self, env: Mapping[str, str], mounts: Sequence[VolumeMountArgsDict]) -> ContainerArgsDict:
        return container("backup", self.pg.image, BACKUP_RESOURCES, command=backup.command("backup.sh"), env=env,
                         mounts=mounts)
