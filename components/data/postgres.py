"""PostgreSQL for the platform: one database and one login role per service.

In-cluster: CloudNativePG runs it (components/data/postgres_cluster.py): a primary and its
standbys, one Pooler (PgBouncer) per tier in front, WAL archiving and base backups to an object
store. External: a managed server described in the stack; a bootstrap Job creates every service's
role and database, and a CronJob dumps them. Either way each service gets a Secret with its own
``DATABASE_URL`` (docs/data.md, docs/restore-postgres.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import VolumeArgsDict, VolumeMountArgsDict
from pulumi_kubernetes.networking.v1 import NetworkPolicyEgressRuleArgsDict

from components.contracts import HealthProbe
from components.data import job_scripts, jobs, sql
from components.data.cnpg_specs import POOLER_LABEL
from components.data.jobs import ADMIN_DIR
from components.data.pod_parts import Pod, Port, config_volume, container
from components.data.postgres_backup import backup_cron_job
from components.data.postgres_cluster import CLUSTER_NAME, PostgresCluster, pooler_name
from components.data.postgres_network import INSTANCE_METRICS_PORT
from components.data.provider import DataArgs, DataComponent
from components.scraping import METRICS_PORT_NAME
from services.model import Dependency, ServiceSpec
from settings.data import JOB_RESOURCES, PostgresSettings, SecretReference

PASSWORDS_DIR = "/run/codai/passwords"
BOOTSTRAP_DIR = "/bootstrap"


PostgresArgs = DataArgs[PostgresSettings]


class Postgres(DataComponent[PostgresSettings]):
    """The platform's PostgreSQL; ``binding_for(service)`` hands each client its Secret and egress rule."""

    type_token = "codai:data:Postgres"
    health = HealthProbe(Dependency.POSTGRES, "cnpg_collector_up", "PostgreSQL")
    role = "database"
    port = Port("postgres", 5432)
    metrics_port = Port(METRICS_PORT_NAME, INSTANCE_METRICS_PORT)

    def build(self) -> None:
        self.pg = self.settings
        self.databases = {spec.name: sql.identifier(spec.name) for spec in self.clients}
        passwords = self.client_secrets(self._client_data)
        if self.pg.in_cluster:
            self.server_objects = PostgresCluster(self, passwords).build()
        else:
            self._external_bootstrap(passwords)
        self.register_outputs({"host": self.host, "port": self.server_port, "databases": self.databases})

    def _external_bootstrap(self, passwords: Mapping[str, pulumi.Output[str]]) -> None:
        """A managed server: a Job makes each service's role and database, a CronJob dumps them."""
        admin = self.pg.external.admin_secret if self.pg.external else None
        assert admin is not None
        scripts = jobs.scripts_config_map(self, "bootstrap-postgres.sh", "backup.sh", "restore.sh", "upload.sh")
        self.scripts_name = scripts.metadata.name
        plan = sql.BootstrapPlan(services=[spec.name for spec in self.clients], password_dir=PASSWORDS_DIR,
                                 connection_limit=self.pg.connection_limit_per_service)
        password_files = {self.databases[service]: (self.client_secret_name(service), "PGPASSWORD")
                          for service in passwords}
        bootstrap_sql = sql.bootstrap_sql(plan)
        bootstrap_config = k8s.core.v1.ConfigMap(
            f"{self.name}-bootstrap-config",
            metadata=self.meta(f"{self.name}-bootstrap", "bootstrap"),
            data={"bootstrap.sql": bootstrap_sql},
            opts=self.child_opts(),
        )
        self.bootstrap = jobs.bootstrap_job(
            self, self._bootstrap_pod(admin, password_files),
            [bootstrap_sql, self.pg.image, self.host, admin.name, *passwords.values()],
            depends_on=[scripts, *self.secrets.values(), bootstrap_config],
            images=[self.pg.image],
        )
        jobs.network_policy(self, "bootstrap")
        if self.pg.backup.enabled:
            backup_cron_job(self, admin)

    # --- credentials ---------------------------------------------------------------------------

    def _client_data(self, spec: ServiceSpec, password: pulumi.Output[str]) -> Mapping[str, pulumi.Input[str]]:
        """DATABASE_URL and the libpq variables, so both URL-style and libpq-style clients work."""
        database, host = sql.identifier(spec.name), self.client_host(spec)
        options = "&".join(f"{key}={value}" for key, value in self._tls_options().items())
        return {
            "DATABASE_URL": pulumi.Output.concat(
                "postgresql://", database, ":", password, "@", host, ":", str(self.server_port), "/", database,
                "?", options),
            "PGHOST": host,
            "PGPORT": str(self.server_port),
            "PGDATABASE": database,
            "PGUSER": database,
            "PGPASSWORD": password,
            **{f"PG{key.upper()}": value for key, value in self._tls_options().items()},
        }

    def client_host(self, spec: ServiceSpec) -> str:
        """In-cluster, its tier's PgBouncer (the Pooler's Service); external, the managed server."""
        if self.pg.external is not None:
            return self.pg.external.host
        return f"{pooler_name(spec.tier)}.{self.namespace}.svc"

    @property
    def host(self) -> str:
        """The server itself: the managed one, or the Cluster's read-write Service (the primary)."""
        return self.pg.external.host if self.pg.external else f"{CLUSTER_NAME}-rw.{self.namespace}.svc"

    def client_egress(self, service: str | None = None) -> list[NetworkPolicyEgressRuleArgsDict]:
        """In-cluster, a client reaches its tier's PgBouncers only (never the instances themselves)."""
        if self.pg.external is not None or service is None:
            return super().client_egress(service)
        tier = next(spec.tier for spec in self.clients if spec.name == service)
        return [{"to": [{"pod_selector": {"match_labels": {POOLER_LABEL: pooler_name(tier)}}}],
                 "ports": [{"protocol": "TCP", "port": self.port.number}]}]

    def _tls_options(self) -> dict[str, str]:
        """libpq TLS options: encrypted to the in-cluster PgBouncer (the operator's certificate, whose CA
        clients do not hold); an external server's certificate is checked."""
        external = self.pg.external
        if external is None:
            return {"sslmode": "require"}
        options: dict[str, str] = {"sslmode": external.tls_mode}
        if external.tls_mode.startswith("verify"):
            options["sslrootcert"] = "system"  # the image's CA bundle (libpq 16 and later)
        return options

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
