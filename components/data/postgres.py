"""PostgreSQL for the platform: one server, one database and one login role per service.

In-cluster: a StatefulSet of the official image with its volume, a tuned configuration,
client, headless and metrics Services, a PodDisruptionBudget, the exporter and its
ServiceMonitor. External: a managed server described in the stack. Either way a bootstrap
Job creates every service's role and database, each service gets a Secret with its own
``DATABASE_URL``, and a CronJob takes backups (docs/data.md, docs/restore-postgres.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import ContainerArgsDict, VolumeArgsDict, VolumeMountArgsDict

from components.contracts import HealthProbe
from components.data import config_files, job_scripts, jobs, server, sql
from components.data.jobs import ADMIN_DIR
from components.data.pod_parts import (
    Pod,
    Port,
    config_volume,
    container,
    exec_probe,
    exporter_probes,
    plain_digest,
    secret_volume,
    server_probes,
)
from components.data.postgres_backup import backup_cron_job
from components.data.provider import DataArgs, DataComponent
from components.scraping import METRICS_PORT_NAME
from components.security import pinned_by_tag_skips
from services.model import Dependency, ServiceSpec
from settings.data import JOB_RESOURCES, PostgresSettings, SecretReference
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


PostgresArgs = DataArgs[PostgresSettings]


class Postgres(DataComponent[PostgresSettings]):
    """The platform's PostgreSQL; ``binding_for(service)`` hands each client its Secret and egress rule."""

    type_token = "codai:data:Postgres"
    dependency = Dependency.POSTGRES
    health = HealthProbe(Dependency.POSTGRES, "pg_up", "PostgreSQL")
    role = "database"
    port = Port("postgres", 5432)
    metrics_port = Port(METRICS_PORT_NAME, 9187)

    def build(self) -> None:
        self.pg = self.settings
        self.databases = {spec.name: sql.identifier(spec.name) for spec in self.clients}

        passwords = self.client_secrets(self._client_data)
        admin = self._admin()
        scripts = jobs.scripts_config_map(self, "bootstrap-postgres.sh", "backup.sh", "restore.sh", "upload.sh")
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
            monitor = self.secret("monitor-secret", f"{self.name}-monitor", METRICS_PORT_NAME,
                                  {"username": sql.MONITOR_ROLE, "password": monitor_password})
            password_files[sql.MONITOR_ROLE] = (f"{self.name}-monitor", "password")
            content.append(monitor_password)
            server.services(self)
            self.statefulset = self._server(admin)
            server.network_policy(self, ["bootstrap", "backup"])
            server.monitor(self)
            prerequisites += [monitor, self.statefulset]

        bootstrap_sql = sql.bootstrap_sql(plan)
        bootstrap_config = k8s.core.v1.ConfigMap(
            f"{self.name}-bootstrap-config",
            metadata=self.meta(f"{self.name}-bootstrap", "bootstrap"),
            data={"bootstrap.sql": bootstrap_sql},
            opts=self.child_opts(),
        )
        self.bootstrap = jobs.bootstrap_job(
            self, self._bootstrap_pod(admin, password_files),
            [bootstrap_sql, self.pg.image, self.host, admin.name, *content],
            depends_on=[*prerequisites, bootstrap_config],
            images=[self.pg.image],
        )
        jobs.network_policy(self, "bootstrap")
        if self.pg.backup.enabled:
            backup_cron_job(self, admin)
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

    def connection_env(self, admin: SecretReference) -> tuple[dict[str, str], VolumeArgsDict, VolumeMountArgsDict]:
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
        return env, *jobs.admin_files(admin)

    # --- the in-cluster server -----------------------------------------------------------------------

    def _server(self, admin: SecretReference) -> k8s.apps.v1.StatefulSet:
        memory_limit = self.sizing.server.memory_limit
        paths = config_files.PostgresPaths(hba_file=f"{CONFIG_DIR}/pg_hba.conf", socket_dir=SOCKET_DIR,
                                           port=self.port.number)
        files = {
            "postgresql.conf": config_files.postgresql_conf(
                paths, memory_limit=memory_limit, max_connections=self.pg.max_connections,
                parameters=self.pg.parameters),
            "pg_hba.conf": config_files.pg_hba_conf(ADMIN_USER, sql.MONITOR_ROLE),
        }
        config = k8s.core.v1.ConfigMap(
            f"{self.name}-config",
            metadata=self.meta(f"{self.name}-config", self.role),
            data=files,
            opts=self.child_opts(),
        )
        ready = exec_probe(["pg_isready", "-q", "-h", SOCKET_DIR, "-p", str(self.port.number), "-U", ADMIN_USER,
                            "-d", "postgres"], period=10, failures=6)
        database = container(
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
            probes=server_probes(ready),
        )
        # Parallel queries exchange data through /dev/shm, which container runtimes cap at 64Mi.
        shm = Memory(min(memory_limit.bytes // 4, 2**30))
        pod = Pod(
            containers=[database, self._exporter()],
            volumes=[
                config_volume("config", config.metadata.name),
                secret_volume("admin", admin.name, {admin.password_key: "password"}),
                secret_volume("monitor", f"{self.name}-monitor", {"password": "password"}),
                {"name": "run", "empty_dir": {"size_limit": "16Mi"}},
                {"name": "shm", "empty_dir": {"medium": "Memory", "size_limit": str(shm)}},
            ],
        )
        return server.stateful_set(self, pod, checksum=plain_digest(*files.values()), grace_seconds=120,
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
        env, admin_volume, admin_mount = self.connection_env(admin)
        passwords: VolumeArgsDict = {"name": "passwords", "projected": {"default_mode": 0o440, "sources": [
            {"secret": {"name": secret, "items": [{"key": key, "path": role}]}}
            for role, (secret, key) in sorted(password_files.items())
        ]}}
        job = container(
            "bootstrap", self.pg.image, JOB_RESOURCES,
            command=job_scripts.command("bootstrap-postgres.sh", f"{BOOTSTRAP_DIR}/bootstrap.sql"),
            env=env,
            mounts=[{"name": "scripts", "mount_path": job_scripts.MOUNT_PATH, "read_only": True},
                    {"name": "bootstrap", "mount_path": BOOTSTRAP_DIR, "read_only": True},
                    {"name": "passwords", "mount_path": PASSWORDS_DIR, "read_only": True}, admin_mount],
        )
        return Pod(containers=[job], volumes=[
            config_volume("scripts", self.scripts_name), config_volume("bootstrap", f"{self.name}-bootstrap"),
            passwords, admin_volume])
