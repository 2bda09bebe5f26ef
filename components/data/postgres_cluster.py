"""The in-cluster PostgreSQL, run by CloudNativePG: the objects the operator acts on.

A ``Cluster`` (a primary and its standbys, failover and switchover are the operator's), one
``Database`` and one managed role per service, one ``Pooler`` (PgBouncer in transaction mode) per
tier with PostgreSQL clients, a ``ScheduledBackup`` of base backups to the object store the
Cluster archives its WAL to, and what the operator does not make: the login Secrets it reads, the
metrics Services and ServiceMonitors, and the NetworkPolicies of its pods. The specs come from the
pure builders of ``cnpg_specs.py`` and ``cnpg_backup_specs.py``. See docs/data.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.data import cnpg_specs, sql
from components.data.cnpg_backup_specs import BarmanStore, scheduled_backup_spec
from components.data.config_files import tuned_parameters
from components.data.postgres_network import (
    INSTANCE_METRICS_PORT,
    POOLER_METRICS_PORT,
    ClusterPods,
    network_policies,
)
from components.data.provider import AnyDataComponent
from components.labels import DATA_TIER, PART_OF, TIER_LABEL
from components.pod import resources
from components.scraping import METRICS_PORT_NAME, MonitoredWorkload, ScrapeEndpoint, service_monitor
from services.model import ServiceSpec
from services.tiers import Tier
from settings.data import PostgresSettings
from settings.quantities import Memory

API_VERSION = "postgresql.cnpg.io/v1"
#: Not ``postgres``: a Cluster makes a ServiceAccount and a PodDisruptionBudget of its own name.
CLUSTER_NAME = "postgres-cluster"


#: What we add to the objects the operator makes (pods, claims, Services): it sets their
#: ``app.kubernetes.io/name``, ``instance``, ``component`` and ``managed-by`` itself.
OPERATOR_POD_LABELS = {"app.kubernetes.io/part-of": PART_OF, TIER_LABEL: DATA_TIER}


def pooler_name(tier: Tier) -> str:
    """The tier's Pooler, and the Service its clients connect to."""
    return f"{CLUSTER_NAME.removesuffix('-cluster')}-pooler-{tier.value}"


def login_secret_name(service: str) -> str:
    return f"{service}-postgres-login"


class PostgresCluster:
    """Builds the CloudNativePG objects of ``component`` (their parent, names and labels)."""

    def __init__(self, component: AnyDataComponent, passwords: Mapping[str, pulumi.Output[str]]) -> None:
        self.component = component
        self.pg: PostgresSettings = component.settings
        self.passwords = passwords
        self.tiers = sorted({spec.tier for spec in component.clients})
        budget = component.args.connection_budget
        if budget is None:
            raise ValueError("an in-cluster PostgreSQL needs the stack's connection budget to size its Poolers")
        self.budget = budget

    def build(self) -> list[pulumi.Resource]:
        """Every object; returns those a client waits for (the Cluster, its Databases, the Poolers)."""
        logins = [self._login_secret(spec) for spec in self.component.clients]
        cluster = self._cluster(logins)
        after_cluster: list[pulumi.Resource] = [cluster]
        databases = [self._database(spec, after_cluster) for spec in self.component.clients]
        poolers = [self._pooler(tier, after_cluster) for tier in self.tiers]
        if self.pg.backup.enabled:
            self._scheduled_backup(after_cluster)
        self._metrics()
        network_policies(self.component, self._pods(), self.pg)
        return [cluster, *databases, *poolers]

    # --- objects -----------------------------------------------------------------------------------

    def _login_secret(self, spec: ServiceSpec) -> k8s.core.v1.Secret:
        """The service's role and password as the operator reads them, from the same generated password."""
        component = self.component
        metadata = component.meta(login_secret_name(spec.name), "credentials")
        # The operator reloads a rotated password into the role without restarting PostgreSQL.
        metadata["labels"] = {**metadata.get("labels", {}), "cnpg.io/reload": "true"}  # type: ignore[dict-item]
        secret = k8s.core.v1.Secret(
            f"{component.name}-client-{spec.name}-login",
            metadata=metadata,
            type="kubernetes.io/basic-auth",
            string_data={"username": sql.identifier(spec.name), "password": self.passwords[spec.name]},
            opts=component.child_opts(),
        )
        component.made_secrets.append(secret)
        return secret

    def _cluster(self, logins: list[k8s.core.v1.Secret]) -> k8s.apiextensions.CustomResource:
        component, pg = self.component, self.pg
        sizing = component.sizing
        roles = tuple(cnpg_specs.ManagedRole.for_service(spec.name, login_secret_name(spec.name),
                                                         pg.connection_limit_per_service)
                      for spec in component.clients)
        plan = cnpg_specs.ClusterPlan(
            name=CLUSTER_NAME, instances=sizing.instances, image=pg.image, storage_size=str(sizing.storage),
            resources=dict(resources(sizing.server)),  # type: ignore[arg-type]
            max_connections=pg.max_connections, roles=roles, labels=OPERATOR_POD_LABELS,
            parameters=_tuned(pg, sizing.server.memory_limit), storage_class=pg.storage_class,
            priority_class_name=component.args.priority_class_name, backup=self.store(),
        )
        spec = cnpg_specs.cluster_spec(plan)
        if sizing.instances == 1 and not component.args.protect_stateful:
            # The operator's budget keeps a lone primary from being evicted: a drain would wait for
            # someone. Where the stack is not protected (staging), a drain may move it, as it may Redis.
            spec["enablePDB"] = False
        return k8s.apiextensions.CustomResource(
            f"{component.name}-cluster", api_version=API_VERSION, kind="Cluster",
            metadata=component.meta(CLUSTER_NAME, component.role), spec=spec,
            # The data outlives the stack: never deleted by Pulumi, and protected where the stack says so.
            opts=component.child_opts(depends_on=list(logins), **component.stateful_options()),
        )

    def _database(self, spec: ServiceSpec, after: list[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
        component, name = self.component, sql.identifier(spec.name)
        return k8s.apiextensions.CustomResource(
            f"{component.name}-database-{spec.name}", api_version=API_VERSION, kind="Database",
            metadata=component.meta(f"{CLUSTER_NAME}-{spec.name}", "database"),
            spec=cnpg_specs.database_spec(CLUSTER_NAME, name, name),
            opts=component.child_opts(depends_on=after),
        )

    def _pooler(self, tier: Tier, after: list[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
        """One Pooler per tier: a Pooler gives every database the same pool, and the tier decides its size."""
        component, sizing = self.component, self.component.sizing
        parameters = cnpg_specs.pooler_parameters(self.budget, self.budget.served_by(tier.value))
        assert sizing.pooler is not None  # every PostgreSQL sizing row has its pooler
        name = pooler_name(tier)
        # The operator makes no budget for PgBouncers: without ours a drain could evict a tier's all at once.
        k8s.policy.v1.PodDisruptionBudget(
            f"{component.name}-pooler-{tier.value}-pdb", metadata=component.meta(name, "pooler"),
            spec={"max_unavailable": 1, "selector": {"match_labels": {cnpg_specs.POOLER_LABEL: name}}},
            opts=component.child_opts())
        return k8s.apiextensions.CustomResource(
            f"{component.name}-pooler-{tier.value}", api_version=API_VERSION, kind="Pooler",
            metadata=component.meta(name, "pooler"),
            spec=cnpg_specs.pooler_spec(
                CLUSTER_NAME, sizing.pooler_instances, "transaction", parameters, name=name,
                labels=OPERATOR_POD_LABELS, priority_class_name=component.args.priority_class_name,
                resources=dict(resources(sizing.pooler))),  # type: ignore[arg-type]
            opts=component.child_opts(depends_on=after),
        )

    def _scheduled_backup(self, after: list[pulumi.Resource]) -> None:
        component = self.component
        k8s.apiextensions.CustomResource(
            f"{component.name}-scheduled-backup", api_version=API_VERSION, kind="ScheduledBackup",
            metadata=component.meta(f"{CLUSTER_NAME}-base-backup", "backup"),
            spec=scheduled_backup_spec(CLUSTER_NAME, self.pg.backup.schedule),
            opts=component.child_opts(depends_on=after),
        )

    def store(self) -> BarmanStore | None:
        """Where the Cluster archives WAL and base backups; the settings refuse an in-cluster volume."""
        backup = self.pg.backup
        if not backup.enabled or backup.object_store is None:
            return None
        target = backup.object_store
        return BarmanStore(destination_path=target.url.rstrip("/"), credentials_secret=target.credentials_secret,
                           endpoint_url=target.endpoint, retention=backup.retention)

    # --- scraping and policies -----------------------------------------------------------------------

    def _pods(self) -> ClusterPods:
        """The operator's own labels: it sets them on every pod it makes and selects by them."""
        return ClusterPods(
            instances={cnpg_specs.CLUSTER_LABEL: CLUSTER_NAME, cnpg_specs.ROLE_LABEL: "instance"},
            poolers={tier: {cnpg_specs.POOLER_LABEL: pooler_name(tier)} for tier in self.tiers},
            every_pooler={cnpg_specs.CLUSTER_LABEL: CLUSTER_NAME, cnpg_specs.ROLE_LABEL: "pooler"},
        )

    def _metrics(self) -> None:
        """The operator's exporters (each instance manager's, each PgBouncer's) behind our Services and monitors."""
        pods = self._pods()
        self._scrape("", METRICS_PORT_NAME, pods.instances, INSTANCE_METRICS_PORT)
        if self.tiers:
            self._scrape("pooler-", f"pooler-{METRICS_PORT_NAME}", pods.every_pooler, POOLER_METRICS_PORT)

    def _scrape(self, prefix: str, label: str, pods: Mapping[str, str], port: int) -> None:
        component = self.component
        name, labels = f"{component.name}-{prefix}{METRICS_PORT_NAME}", component.labels(label)
        k8s.core.v1.Service(
            f"{name}-service", metadata=component.meta(name, label),
            spec={"type": "ClusterIP", "selector": dict(pods),
                  "ports": [{"name": METRICS_PORT_NAME, "port": port, "target_port": port, "protocol": "TCP"}]},
            opts=component.child_opts(),
        )
        # The monitor is named after what it watches: `postgres` (the instances), `postgres-pooler`.
        watched = f"{component.name}-{prefix}".rstrip("-")
        workload = MonitoredWorkload(watched, component.namespace, labels, labels)
        service_monitor(f"{component.name}-{prefix}service-monitor", workload, ScrapeEndpoint(),
                        component.args.scraping, component.child_opts())


def _tuned(pg: PostgresSettings, memory_limit: Memory) -> dict[str, str]:
    """The parameters derived from the memory limit, with the stack's own over them."""
    return {**tuned_parameters(memory_limit, pg.max_connections), **pg.parameters}
