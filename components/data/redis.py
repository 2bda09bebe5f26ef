"""Redis for the platform: one server, one ACL user per service confined to its key prefix.

In-cluster: a StatefulSet of the official image with AOF persistence on its volume, the
generated ACL file (the ``default`` user off), the exporter and its ServiceMonitor.
External: a managed server; a bootstrap Job applies the same users with ``ACL SETUSER``.
Each service gets a Secret with its ``REDIS_URL``, user name, password and key prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import HealthProbe
from components.data import acl, config_files, job_scripts, jobs, redis_replication, sentinel_files, server
from components.data.jobs import ADMIN_DIR
from components.data.pod_parts import (
    Pod,
    Port,
    config_volume,
    container,
    digest,
    exec_probe,
    exporter_probes,
    secret_env_skips,
    secret_volume,
    server_probes,
)
from components.data.provider import DataArgs, DataComponent
from components.scraping import METRICS_PORT_NAME
from components.security import pinned_by_tag_skips
from services.model import Dependency, RedisUse, ServiceSpec
from settings.data import JOB_RESOURCES, ExternalRedis, RedisSettings

DATA_DIR = "/data"
CONFIG_DIR = "/etc/redis"
#: The ACL file and the probe's password (a Secret: the ACL file holds password digests).
USERS_DIR = "/run/codai/redis"
BOOTSTRAP_DIR = "/run/codai/bootstrap"


RedisArgs = DataArgs[RedisSettings]


class Redis(DataComponent[RedisSettings]):
    """The platform's Redis; ``binding_for(service)`` hands each client its Secret and egress rule."""

    type_token = "codai:data:Redis"
    health = HealthProbe(Dependency.REDIS, "redis_up", "Redis")
    role = "cache"
    port = Port("redis", 6379)
    metrics_port = Port(METRICS_PORT_NAME, 9121)

    def build(self) -> None:
        self.redis = self.settings

        passwords: dict[str, pulumi.Input[str]] = {**self.client_secrets(self._client_data)}
        users = [acl.service_user(spec.name) for spec in self.clients]
        external = self.redis.external
        if external is None:
            passwords[acl.EXPORTER_USER] = self.password("exporter").result
            passwords[acl.HEALTHCHECK_USER] = self.password("healthcheck").result
            users += [acl.exporter_user(), acl.healthcheck_user(), acl.default_user()]
            replication: pulumi.Output[dict[str, str]] | None = None
            if self.replicated:
                for user in sentinel_files.server_users():
                    passwords[user.name] = self.password(user.name).result
                users += sentinel_files.server_users()
                replication = pulumi.Output.all(**passwords).apply(
                    lambda values: redis_replication.files(self, values))
                redis_replication.files_secret(self, replication)
            acl_text = pulumi.Output.all(**passwords).apply(lambda values: acl.acl_file(users, values))
            self.secret("users-secret", f"{self.name}-users", self.role, {
                "users.acl": acl_text,
                acl.HEALTHCHECK_USER: passwords[acl.HEALTHCHECK_USER],
                acl.EXPORTER_USER: passwords[acl.EXPORTER_USER],
            })
            server.services(self)
            self.statefulset = self._server(acl_text, replication)
            server.network_policy(self, [], redis_replication.peering(self) if self.replicated else None)
            server.monitor(self)
            if self.replicated:
                redis_replication.sentinel_monitoring(self)
        else:
            if external.disable_default_user:
                users.append(acl.default_user())
            commands = pulumi.Output.all(**passwords).apply(lambda values: acl.setuser_commands(users, values))
            self.bootstrap = self._external_bootstrap(external, commands)
            jobs.network_policy(self, "bootstrap")
        self.register_outputs({"host": self.host, "port": self.server_port, "users": sorted(u.name for u in users)})

    def _client_data(self, spec: ServiceSpec, password: pulumi.Output[str]) -> Mapping[str, pulumi.Input[str]]:
        external = self.redis.external
        tls = bool(external and external.tls)
        port = str(self.server_port)
        if self.replicated:
            # Any server may be the master after a failover: the client asks the sentinels (docs/data.md).
            return {**redis_replication.discovery_env(self, spec.name), "REDIS_PASSWORD": password,
                    "REDIS_TLS": "false", "REDIS_KEY_PREFIX": acl.key_prefix(spec.name)}
        return {
            "REDIS_URL": pulumi.Output.concat("rediss" if tls else "redis", "://", spec.name, ":", password, "@",
                                              self.host, ":", port, "/0"),
            "REDIS_HOST": self.host,
            "REDIS_PORT": port,
            "REDIS_TLS": str(tls).lower(),
            "REDIS_USERNAME": spec.name,
            "REDIS_PASSWORD": password,
            # Every key and channel of the service must start with this; the server refuses others.
            "REDIS_KEY_PREFIX": acl.key_prefix(spec.name),
        }

    @property
    def replicated(self) -> bool:
        """More than one server in the cluster, under Sentinel (a managed server's replicas are its provider's)."""
        return self.redis.external is None and self.sizing.instances > 1

    def client_ports(self) -> list[int]:
        """A replicated Redis: the clients also ask the sentinels, on the same pods."""
        sentinel = [redis_replication.SENTINEL_PORT.number] if self.replicated else []
        return [*super().client_ports(), *sentinel]

    def _server(self, acl_text: pulumi.Output[str],
                replication: pulumi.Output[dict[str, str]] | None) -> k8s.apps.v1.StatefulSet:
        conf = config_files.redis_conf(
            config_files.RedisPaths(data_dir=DATA_DIR, acl_file=f"{USERS_DIR}/users.acl", port=self.port.number),
            memory_limit=self.sizing.server.memory_limit,
            maxmemory_percent=self.redis.maxmemory_percent,
            eviction_policy=self.redis.eviction_policy,
            persistent=any(spec.redis_use == RedisUse.STATE for spec in self.clients),
        )
        config = k8s.core.v1.ConfigMap(
            f"{self.name}-config",
            metadata=self.meta(f"{self.name}-config", self.role),
            data={"redis.conf": conf},
            opts=self.child_opts(),
        )
        # Replies LOADING while it reads the AOF, so the pod is ready only once the data is back.
        ping = exec_probe(["sh", "-c", f'REDISCLI_AUTH="$(cat {USERS_DIR}/{acl.HEALTHCHECK_USER})" redis-cli '
                           f"--no-auth-warning --user {acl.HEALTHCHECK_USER} -p {self.port.number} ping "
                           "| grep -q PONG"], period=10, failures=6)
        cache = container(
            "redis", self.redis.image, self.sizing.server,
            command=(redis_replication.server_command(f"{CONFIG_DIR}/redis.conf") if replication is not None
                     else ["redis-server", f"{CONFIG_DIR}/redis.conf"]),
            ports=[self.port],
            mounts=[{"name": "data", "mount_path": DATA_DIR},
                    {"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
                    {"name": "users", "mount_path": USERS_DIR, "read_only": True},
                    *([redis_replication.FILES_MOUNT] if replication is not None else [])],
            probes=server_probes(ping),
        )
        assert self.sizing.exporter is not None  # every Redis sizing row has its exporter
        exporter = container(
            "exporter", self.redis.exporter_image, self.sizing.exporter,
            env={"REDIS_ADDR": f"redis://localhost:{self.port.number}", "REDIS_USER": acl.EXPORTER_USER},
            secret_env=[{"name": "REDIS_PASSWORD", "value_from": {"secret_key_ref": {
                "name": f"{self.name}-users", "key": acl.EXPORTER_USER}}}],
            ports=[self.metrics_port],
            probes=exporter_probes(),
        )
        pod = Pod(containers=[cache, exporter], volumes=[
            config_volume("config", config.metadata.name),
            secret_volume("users", f"{self.name}-users",
                          {"users.acl": "users.acl", acl.HEALTHCHECK_USER: acl.HEALTHCHECK_USER}),
        ])
        checksum = digest(conf, acl_text)
        if replication is not None:
            pod.containers += redis_replication.sentinel_containers(self, self.redis.image, self.redis.exporter_image)
            pod.volumes.append(redis_replication.files_volume(self))
            checksum = digest(conf, acl_text, replication.apply(lambda texts: "".join(sorted(texts.values()))))
        # Redis reads its ACL file at start: a changed user list or password restarts the pod.
        return server.stateful_set(self, pod, checksum=checksum, grace_seconds=60,
                                   skips=[*pinned_by_tag_skips(self.redis.image, self.redis.exporter_image),
                                          *secret_env_skips(pod)])

    def _external_bootstrap(self, external: ExternalRedis, commands: pulumi.Output[str]) -> k8s.batch.v1.Job:
        scripts = jobs.scripts_config_map(self, "bootstrap-redis.sh")
        commands_secret = self.secret("bootstrap-secret", f"{self.name}-bootstrap", "bootstrap",
                                      {"commands": commands})
        admin_volume, admin_mount = jobs.admin_files(external.admin_secret)
        job = container(
            "bootstrap", self.redis.image, JOB_RESOURCES,
            command=job_scripts.command("bootstrap-redis.sh", f"{BOOTSTRAP_DIR}/commands"),
            env={"REDIS_HOST": external.host, "REDIS_PORT": str(external.port), "REDIS_TLS": str(external.tls).lower(),
                 "REDIS_USER_FILE": f"{ADMIN_DIR}/username", "REDIS_PASSWORD_FILE": f"{ADMIN_DIR}/password"},
            mounts=[{"name": "scripts", "mount_path": job_scripts.MOUNT_PATH, "read_only": True},
                    {"name": "commands", "mount_path": BOOTSTRAP_DIR, "read_only": True}, admin_mount],
        )
        pod = Pod(containers=[job], volumes=[
            config_volume("scripts", scripts.metadata.name),
            secret_volume("commands", commands_secret.metadata.name, {"commands": "commands"}),
            admin_volume,
        ])
        return jobs.bootstrap_job(self, pod, [commands, self.redis.image, external.host, external.admin_secret.name],
                                  depends_on=[scripts, commands_secret, *self.secrets.values()],
                                  images=[self.redis.image])
