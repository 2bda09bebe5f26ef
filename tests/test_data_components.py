"""The PostgreSQL and Redis components under Pulumi's mocks: what they register, and what it says.

In the cluster PostgreSQL is CloudNativePG's: the program renders the objects the operator acts on
(a Cluster, a Database per service, a Pooler per tier, a ScheduledBackup) and what the operator does
not make (login Secrets, metrics Services and monitors, NetworkPolicies). A managed server keeps the
bootstrap Job and the backup CronJob; those tests run in external mode.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.data import Postgres, PostgresArgs, Redis, RedisArgs, sql
from components.labels import DATA_TIER, TIER_LABEL
from components.scraping import Scraping
from services.catalog import CATALOG
from services.model import Dependency, RedisUse
from services.tiers import TIER_POLICIES, Tier
from settings.data import PostgresSettings, RedisSettings, footprint
from settings.defaults import SizingProfile
from settings.loader import load_settings
from settings.monitoring import MonitoringSettings
from settings.quantities import Cpu, Memory
from tests.conftest import POSTGRES_BACKUP
from tools.offline import ROOT, StackRun, run_stack, stack_values
from tools.rendered import selector_matches
from tools.validate import lint, load_crd_schemas


def data_tier_program(stack: str, values: dict[str, Any]) -> Callable[[], None]:
    """PostgreSQL and Redis on their own, behind a namespace; exports what each hands its clients."""

    def program() -> None:
        rest = dict(values)
        postgres_settings = PostgresSettings.model_validate(rest.pop("postgres", {}))
        redis_settings = RedisSettings.model_validate(rest.pop("redis", {}))
        plan = load_settings(stack, {**rest, "postgres": POSTGRES_BACKUP})
        environment = plan.settings.environment
        namespace = environment.namespace
        scraping = Scraping.of(MonitoringSettings())
        postgres = PostgresArgs(settings=postgres_settings, namespace=namespace, sizing=environment.sizing,
                                protect_stateful=environment.protect_stateful, scraping=scraping,
                                clients=CATALOG.using(Dependency.POSTGRES), priority_class_name=f"{namespace}-core",
                                connection_budget=plan.connection_budget)
        redis = RedisArgs(settings=redis_settings, namespace=namespace, sizing=environment.sizing,
                          protect_stateful=environment.protect_stateful, scraping=scraping,
                          clients=CATALOG.using(Dependency.REDIS))
        prerequisite = k8s.core.v1.Namespace("namespace", metadata={"name": namespace})
        after_namespace = pulumi.ResourceOptions(depends_on=[prerequisite])
        providers: list[Postgres | Redis] = [Postgres("postgres", postgres, after_namespace),
                                             Redis("redis", redis, after_namespace)]
        bindings: dict[str, dict[str, Any]] = {}
        for provider in providers:
            for spec in CATALOG.values():
                try:
                    binding = provider.binding_for(spec.name)
                except KeyError:
                    continue
                bindings.setdefault(provider.dependency.value, {})[spec.name] = {
                    "secret": binding.secret_name, "egress": binding.egress}
        pulumi.export("bindings", bindings)

    return program

EXTERNAL_POSTGRES: dict[str, Any] = {
    "mode": "external",
    "external": {"host": "db.internal.example.com", "adminSecret": {"name": "pg-admin"},
                 "egressCidrs": ["10.20.0.0/16"]},
    "backup": {"target": "objectStore", "keep": 14,
               "objectStore": {"url": "s3://codai-backups/production", "credentialsSecret": "backup-s3"}},
}
EXTERNAL_REDIS = {
    "mode": "external",
    "external": {"host": "cache.internal.example.com", "adminSecret": {"name": "redis-admin", "usernameKey": "user"},
                 "egressCidrs": ["10.30.0.0/16", "10.31.0.0/16"]},
}
PG_CLIENTS = sorted(spec.name for spec in CATALOG.using(Dependency.POSTGRES))
REDIS_CLIENTS = sorted(spec.name for spec in CATALOG.using(Dependency.REDIS))
#: An external server whose dumps stay in the namespace, on the backup volume (the backup target's default).
EXTERNAL_POSTGRES_ON_A_VOLUME = {**EXTERNAL_POSTGRES, "backup": {"target": "volume"}}
#: The Cluster's name (not ``postgres``: the operator names a ServiceAccount and a PDB after it).
CLUSTER = "postgres-cluster"
#: PostgreSQL's clients by tier: each tier has its Pooler, whose pool is the tier's.
PG_TIERS = {tier.value: sorted(spec.name for spec in CATALOG.using(Dependency.POSTGRES) if spec.tier == tier)
            for tier in Tier}
#: The labels the operator puts on the pods it makes (CloudNativePG 1.29: pkg/specs/pods.go and
#: pkg/specs/pgbouncer/deployments.go): the instances, and every PgBouncer of the Cluster.
INSTANCES = {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "instance"}
EVERY_POOLER = {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "pooler"}
#: What the program adds to the operator's pods, claims and Services: these two, nothing of its own
#: selectors (app.kubernetes.io/name and the like are the operator's).
PLATFORM_LABELS = {"app.kubernetes.io/part-of": "codai", "codai.io/tier": "data"}


@cache
def data_run(stack: str, overrides: str = "{}") -> StackRun:
    """The two components alone, for ``stack`` with top-level ``overrides`` (JSON) merged in."""
    values = stack_values(stack)
    for key, value in json.loads(overrides).items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return run_stack(stack, config={}, program=data_tier_program(stack, values))


def run_with(stack: str, **overrides: Any) -> StackRun:
    return data_run(stack, json.dumps(overrides, sort_keys=True))


@pytest.fixture(params=["staging", "production"])
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["inCluster", "external"])
def any_run(request: pytest.FixtureRequest, stack: str) -> StackRun:
    if request.param == "external":
        return run_with(stack, postgres=EXTERNAL_POSTGRES, redis=EXTERNAL_REDIS)
    return data_run(stack)


def objects(run: StackRun) -> list[dict[str, Any]]:
    return [obj for obj in run.kubernetes_objects() if obj["kind"] != "Namespace"]


def pod_specs(run: StackRun) -> dict[str, dict[str, Any]]:
    """``Kind/name -> pod spec`` of every workload."""
    specs = {}
    for obj in objects(run):
        if obj["kind"] in ("StatefulSet", "Job"):
            specs[f"{obj['kind']}/{obj['metadata']['name']}"] = obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            specs[f"CronJob/{obj['metadata']['name']}"] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def secret_data(run: StackRun, name: str) -> dict[str, str]:
    (secret,) = [o for o in run.kubernetes_objects(redact=False) if o["kind"] == "Secret"
                 and o["metadata"]["name"] == name]
    data: dict[str, str] = secret["stringData"]
    return data


def mock_password(resource_name: str) -> str:
    """What the harness's RandomPassword returns (tools/offline.py): deterministic per resource name."""
    return hashlib.sha256(resource_name.encode()).hexdigest()[:32]


def pooler(tier: str) -> str:
    """A tier's Pooler: its PgBouncer pods' ``cnpg.io/poolerName``, and the Service its clients connect to."""
    return f"postgres-pooler-{tier}"


def tier_of(service: str) -> str:
    (tier,) = [tier for tier, clients in PG_TIERS.items() if service in clients]
    return tier


def postgres_objects(run: StackRun) -> list[dict[str, Any]]:
    return [obj for obj in objects(run) if obj["metadata"]["labels"]["app.kubernetes.io/name"] == "postgres"]


def stack_backup(stack: str, **changes: Any) -> dict[str, Any]:
    """The stack file's ``postgres.backup`` with ``changes``: an override of ``backup`` replaces the whole block."""
    return {"backup": {**stack_values(stack)["postgres"]["backup"], **changes}}


def external_postgres(stack: str = "production", **changes: Any) -> StackRun:
    """PostgreSQL managed elsewhere (``EXTERNAL_POSTGRES`` with top-level ``changes``), Redis as the stack says."""
    return run_with(stack, postgres={**EXTERNAL_POSTGRES, **changes})


# --- shape and validity ------------------------------------------------------------------------------


def test_every_child_is_parented_named_after_its_component_and_after_the_namespace(any_run):
    components = {r.urn: r for r in any_run.resources if r.type.startswith("codai:data:")}
    assert sorted(r.type for r in components.values()) == ["codai:data:Postgres", "codai:data:Redis"]
    (namespace,) = [r for r in any_run.resources if r.type == "kubernetes:core/v1:Namespace"]
    for resource in any_run.resources:
        if resource.type.startswith("codai:data:") or resource is namespace:
            continue
        owner = components[resource.parent]
        assert resource.name.startswith(f"{owner.name}-"), resource.urn
        if resource.is_kubernetes:
            assert namespace.urn in resource.depends_on, resource.urn


def test_every_object_is_named_namespaced_and_labelled_as_data(any_run, stack):
    namespace = load_settings(stack, stack_values(stack)).settings.environment.namespace
    for obj in objects(any_run):
        meta = obj["metadata"]
        assert meta["name"] and meta["namespace"] == namespace, obj["kind"]
        assert meta["labels"][TIER_LABEL] == DATA_TIER
        assert meta["labels"]["app.kubernetes.io/name"] in ("postgres", "redis")


@pytest.mark.parametrize("version", ["1.30", "1.34"])
def test_objects_are_valid_for_kubernetes_and_the_operator_crds(any_run, stack, version):
    crds = load_crd_schemas()
    rendered = objects(any_run)
    for obj in rendered:
        key = (obj["apiVersion"], obj["kind"])
        if key in crds:
            jsonschema.validate(obj, crds[key])
        else:
            kubernetes_validate.validate(obj, version, strict=True)
    # CloudNativePG's kinds are checked against its vendored CRDs (v1.29.1), none passed over as unknown.
    cnpg = {(o["apiVersion"], o["kind"]) for o in rendered if o["apiVersion"].startswith("postgresql.cnpg.io/")}
    assert cnpg <= crds.keys()
    assert {kind for _, kind in cnpg} in ({"Cluster", "Database", "Pooler", "ScheduledBackup"}, set())
    # Secrets the stack names but this program does not make (admin credentials, bucket keys): the
    # in-cluster server's archive keys, or the managed servers' admin credentials and the dumps' bucket keys.
    in_cluster = PostgresSettings.model_validate(stack_values(stack)["postgres"]).referenced_secrets()
    external = (PostgresSettings.model_validate(EXTERNAL_POSTGRES).referenced_secrets()
                | RedisSettings.model_validate(EXTERNAL_REDIS).referenced_secrets())
    assert (in_cluster, external) == ({"postgres-backup-s3"}, {"pg-admin", "redis-admin", "backup-s3"})
    # The lint also sees what the operator makes of the Clusters and Poolers (tools/operator_pods.py):
    # the selectors of our metrics Services and NetworkPolicies must find the operator's pods.
    assert lint(rendered, in_cluster | external) == []


def test_pods_are_restricted_sized_pinned_and_token_free(any_run):
    assert pod_specs(any_run)
    for where, pod in pod_specs(any_run).items():
        assert pod["automountServiceAccountToken"] is False, where
        context = pod["securityContext"]
        assert context["runAsNonRoot"] and context["runAsUser"] >= 10000, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert all("hostPath" not in v for v in pod["volumes"]) and not pod.get("hostNetwork")
        for c in containers(pod):
            security = c["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]} and security["readOnlyRootFilesystem"]
            assert {"cpu", "memory"} <= c["resources"]["requests"].keys() & c["resources"]["limits"].keys()
            tag = c["image"].rsplit("/", 1)[-1]
            assert ":" in tag and not tag.endswith(":latest"), c["image"]


def test_the_redis_server_and_its_exporter_have_probes():
    """PostgreSQL's probes are CloudNativePG's own (its instance manager's and PgBouncer's)."""
    pod = data_run("production").get("StatefulSet", "redis")["spec"]["template"]["spec"]
    server, exporter = pod["containers"][:2]  # then, in a replicated Redis, a sentinel and its exporter
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= server.keys()
    assert {"livenessProbe", "readinessProbe"} <= exporter.keys()
    # The first start may load a large append-only file: the startup probe allows ten minutes.
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


# --- PostgreSQL in the cluster: CloudNativePG's objects ---------------------------------------------------


#: Per stack: the instances, the data volume, the server's and each PgBouncer's requests and limits.
CLUSTER_SIZING = {
    "staging": (1, "10Gi", {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                1, {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}),
    "production": (3, "100Gi", {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}},
                   2, {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}),
}


def test_in_cluster_postgres_is_a_cloudnativepg_cluster_and_no_workload_of_ours(stack):
    kinds = Counter(obj["kind"] for obj in postgres_objects(data_run(stack)))
    # No StatefulSet, volume claim, Job, CronJob, ConfigMap or ServiceAccount; no budget for the
    # instances either (the operator makes its own), one for each tier's PgBouncers (it makes none).
    assert kinds == {"Cluster": 1, "Database": 23, "Pooler": 3, "ScheduledBackup": 1,
                     "Secret": 2 * 23,  # each service's DATABASE_URL and its login for the operator
                     "Service": 2, "ServiceMonitor": 2,  # the instances' and the PgBouncers' metrics
                     "NetworkPolicy": 1 + 3,  # the instances', each Pooler's
                     "PodDisruptionBudget": 3}  # each Pooler's
    budgets = {o["metadata"]["name"]: o["spec"] for o in data_run(stack).of_kind("PodDisruptionBudget")
               if "postgres" in o["metadata"]["name"]}
    assert budgets == {f"postgres-pooler-{tier}": {"maxUnavailable": 1, "selector": {"matchLabels": {
        "cnpg.io/poolerName": f"postgres-pooler-{tier}"}}} for tier in ("business", "core", "support")}


def test_the_cluster_runs_the_stack_s_instances_image_volume_and_sizing(stack):
    run = data_run(stack)
    namespace = load_settings(stack, stack_values(stack)).settings.environment.namespace
    cluster = run.get("Cluster", CLUSTER)
    spec = cluster["spec"]
    instances, storage, resources, _, _ = CLUSTER_SIZING[stack]
    assert (spec["instances"], spec["imageName"]) == (instances, "ghcr.io/cloudnative-pg/postgresql:16.4")
    assert (spec["storage"], spec["resources"]) == ({"size": storage}, resources)
    assert spec["priorityClassName"] == f"{namespace}-core"
    # One instance per node where it can, and spread over zones: a node or zone lost takes one instance.
    assert spec["affinity"] == {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname",
                                "podAntiAffinityType": "preferred"}
    assert spec["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": INSTANCES}}]
    # Updates move the primary to an updated standby instead of restarting it in place.
    assert (spec["primaryUpdateStrategy"], spec["primaryUpdateMethod"]) == ("unsupervised", "switchover")
    assert spec["inheritedMetadata"] == {"labels": PLATFORM_LABELS}
    assert cluster["metadata"]["labels"]["app.kubernetes.io/component"] == "database"
    # No superuser login over the network, and no bootstrap section: initdb, then the operator's managed roles.
    assert spec["enableSuperuserAccess"] is False and "bootstrap" not in spec


def test_the_stack_s_instances_volume_and_sizing_reach_the_cluster_and_the_poolers():
    run = run_with("production", postgres={
        "instances": 5, "storageSize": "250Gi", "storageClass": "fast-ssd",
        "resources": {"requests": {"cpu": "2"}, "limits": {"memory": "8Gi"}},
        "pooler": {"instances": 3, "resources": {"limits": {"cpu": "1"}}}})
    spec = run.get("Cluster", CLUSTER)["spec"]
    assert spec["instances"] == 5 and spec["storage"] == {"size": "250Gi", "storageClass": "fast-ssd"}
    assert spec["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}
    for tier in PG_TIERS:
        pooler_spec = run.get("Pooler", pooler(tier))["spec"]
        assert pooler_spec["instances"] == 3, tier
        assert pooler_spec["template"]["spec"]["containers"] == [{"name": "pgbouncer", "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}}], tier


def test_each_service_has_a_managed_role_with_only_its_login_and_connection_limit():
    roles = data_run("production").get("Cluster", CLUSTER)["spec"]["managed"]["roles"]
    assert sorted(role["name"] for role in roles) == [sql.identifier(s) for s in PG_CLIENTS]
    for service in PG_CLIENTS:
        (role,) = [r for r in roles if r["name"] == sql.identifier(service)]
        assert role == {"name": sql.identifier(service), "ensure": "present", "login": True, "connectionLimit": 40,
                        "passwordSecret": {"name": f"{service}-postgres-login"}, "superuser": False,
                        "createdb": False, "createrole": False, "replication": False, "bypassrls": False}
    limited = run_with("production", postgres={"connectionLimitPerService": 20})
    assert {r["connectionLimit"] for r in limited.get("Cluster", CLUSTER)["spec"]["managed"]["roles"]} == {20}


def test_each_service_has_its_database_which_outlives_the_object():
    run = data_run("production")
    databases = {o["metadata"]["name"]: o["spec"] for o in run.of_kind("Database")}
    assert databases == {f"{CLUSTER}-{service}": {
        "cluster": {"name": CLUSTER}, "name": sql.identifier(service), "owner": sql.identifier(service),
        "ensure": "present", "databaseReclaimPolicy": "retain"} for service in PG_CLIENTS}
    # Each role reaches the database of its own name only; nothing else logs in over the network.
    assert run.get("Cluster", CLUSTER)["spec"]["postgresql"]["pg_hba"] == [
        "host sameuser all all scram-sha-256", "host all all all reject"]


def test_each_tier_has_a_pooler_in_transaction_mode_with_the_tier_s_pool(stack):
    run = data_run(stack)
    namespace = load_settings(stack, stack_values(stack)).settings.environment.namespace
    _, _, _, instances, resources = CLUSTER_SIZING[stack]
    assert sorted(o["metadata"]["name"] for o in run.of_kind("Pooler")) == sorted(pooler(t) for t in PG_TIERS)
    assert {tier: str(TIER_POLICIES[Tier(tier)].database_pool_size) for tier in PG_TIERS} == {
        "core": "4", "business": "2", "support": "2"}
    for tier in PG_TIERS:
        spec = run.get("Pooler", pooler(tier))["spec"]
        pool = str(TIER_POLICIES[Tier(tier)].database_pool_size)
        spread = {"maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway", "matchLabelKeys": ["pod-template-hash"],
                  "labelSelector": {"matchLabels": {"cnpg.io/poolerName": pooler(tier)}}}
        assert spec == {
            "cluster": {"name": CLUSTER}, "instances": instances, "type": "rw",
            # Every database behind a Pooler gets the same pool: the tier's, and no reserve beyond it.
            "pgbouncer": {"poolMode": "transaction", "parameters": {
                "max_client_conn": "1000", "default_pool_size": pool, "max_db_connections": pool,
                "reserve_pool_size": "0"}},
            "template": {"metadata": {"labels": PLATFORM_LABELS}, "spec": {
                "containers": [{"name": "pgbouncer", "resources": resources}],
                "topologySpreadConstraints": [{**spread, "topologyKey": "topology.kubernetes.io/zone"},
                                              {**spread, "topologyKey": "kubernetes.io/hostname"}],
                "priorityClassName": f"{namespace}-core"}},
        }, tier


#: Per stack, the parameters tuned from the memory limit (1Gi in staging, 4Gi in production: a quarter for
#: shared buffers, three quarters for the cache, a sixteenth for maintenance, work_mem for 200 connections).
TUNED = {"staging": {"max_connections": "200", "shared_buffers": "256MB", "effective_cache_size": "768MB",
                     "maintenance_work_mem": "64MB", "work_mem": "4MB"},
         "production": {"max_connections": "200", "shared_buffers": "1024MB", "effective_cache_size": "3072MB",
                        "maintenance_work_mem": "256MB", "work_mem": "7MB"}}


def test_the_cluster_runs_parameters_tuned_for_its_memory_limit_and_the_stack_s_own(stack):
    assert data_run(stack).get("Cluster", CLUSTER)["spec"]["postgresql"]["parameters"] == TUNED[stack]
    tuned = run_with(stack, postgres={"resources": {"limits": {"memory": "8Gi"}}, "maxConnections": 400,
                                      "parameters": {"work_mem": "16MB", "random_page_cost": "1.1"}})
    # 8Gi: 2048MB of shared buffers, 6144MB of cache, 512MB for maintenance; the stack's work_mem wins.
    assert tuned.get("Cluster", CLUSTER)["spec"]["postgresql"]["parameters"] == {
        "max_connections": "400", "shared_buffers": "2048MB", "effective_cache_size": "6144MB",
        "maintenance_work_mem": "512MB", "work_mem": "16MB", "random_page_cost": "1.1"}


def test_the_cluster_archives_to_the_stack_s_store_and_takes_base_backups_on_schedule(stack):
    run = data_run(stack)
    assert run.get("Cluster", CLUSTER)["spec"]["backup"] == {
        "retentionPolicy": "30d",
        "barmanObjectStore": {
            "destinationPath": f"s3://codai-backups/{stack}",
            "s3Credentials": {"accessKeyId": {"name": "postgres-backup-s3", "key": "AWS_ACCESS_KEY_ID"},
                              "secretAccessKey": {"name": "postgres-backup-s3", "key": "AWS_SECRET_ACCESS_KEY"}},
            "wal": {"compression": "gzip"}, "data": {"compression": "gzip"}}}
    # 02:30 UTC in CloudNativePG's six fields (seconds first); the first base backup as soon as it exists.
    assert run.get("ScheduledBackup", f"{CLUSTER}-base-backup")["spec"] == {
        "cluster": {"name": CLUSTER}, "schedule": "0 30 2 * * *", "method": "barmanObjectStore",
        "immediate": True, "backupOwnerReference": "self"}
    assert not run.of_kind("CronJob") and not run.of_kind("PersistentVolumeClaim")
    changed = run_with(stack, postgres=stack_backup(stack, schedule="15 4 * * 0", retention="8w",
                                                    objectStore={"url": "s3://other-bucket/pg/",
                                                                 "endpoint": "https://minio.example.com",
                                                                 "credentialsSecret": "minio-keys"}))
    backup = changed.get("Cluster", CLUSTER)["spec"]["backup"]
    assert backup["retentionPolicy"] == "8w"
    store = backup["barmanObjectStore"]
    assert (store["destinationPath"], store["endpointURL"]) == ("s3://other-bucket/pg", "https://minio.example.com")
    assert {ref["name"] for ref in store["s3Credentials"].values()} == {"minio-keys"}
    assert changed.get("ScheduledBackup", f"{CLUSTER}-base-backup")["spec"]["schedule"] == "0 15 4 * * 0"
    off = run_with(stack, postgres=stack_backup(stack, enabled=False))
    assert "backup" not in off.get("Cluster", CLUSTER)["spec"] and not off.of_kind("ScheduledBackup")


# --- data safety -----------------------------------------------------------------------------------------


def test_the_data_is_retained_always_and_protected_where_the_stack_says(stack):
    run = data_run(stack)
    protect = load_settings(stack, stack_values(stack)).settings.environment.protect_stateful
    assert protect is (stack == "production")
    # The Cluster stays when the stack goes, and the operator keeps its volumes with it.
    cluster = run.resource("Cluster", CLUSTER)
    assert (cluster.retain_on_delete, cluster.protect) == (True, protect)
    # A Redis server goes, and its volumes stay.
    redis = run.resource("StatefulSet", "redis")
    assert (redis.retain_on_delete, redis.protect) == (False, protect)
    # A new storage size or class never replaces the server: live volumes grow by claim expansion.
    assert redis.ignore_changes == ["spec.volumeClaimTemplates"]
    retention = run.get("StatefulSet", "redis")["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert retention == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    # Deleting a Database object (a service leaving the catalog) leaves its database.
    assert {o["spec"]["databaseReclaimPolicy"] for o in run.of_kind("Database")} == {"retain"}
    # A managed server's dumps on a volume of the namespace: kept, and protected as the data is.
    volume = external_postgres(stack, backup={"target": "volume"}).resource("PersistentVolumeClaim",
                                                                            "postgres-backups")
    assert (volume.retain_on_delete, volume.protect) == (True, protect)


IMMUTABLE = ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy")


def test_changing_unrelated_settings_replaces_no_stateful_resource():
    before = data_run("production")
    after = run_with(
        "production",
        environment={"release": "2025.1.0"},
        postgres={"image": "ghcr.io/cloudnative-pg/postgresql:16.6", "resources": {"limits": {"memory": "8Gi"}},
                  "maxConnections": 300, "parameters": {"work_mem": "16MB"}, "instances": 5,
                  "pooler": {"instances": 3}, "connectionLimitPerService": 20,
                  **stack_backup("production", schedule="0 4 * * *", retention="8w")},
        redis={"evictionPolicy": "allkeys-lru", "maxmemoryPercent": 70, "resources": {"requests": {"cpu": "500m"}}},
    )
    stateful = [("Cluster", CLUSTER), *(("Database", f"{CLUSTER}-{s}") for s in PG_CLIENTS),
                *(("Secret", f"{s}-postgres-login") for s in PG_CLIENTS), ("StatefulSet", "redis")]
    for kind, name in stateful:
        assert before.resource(kind, name).urn == after.resource(kind, name).urn, name
    passwords = sorted(r.urn for r in before.resources if r.type.startswith("random:"))
    assert passwords == sorted(r.urn for r in after.resources if r.type.startswith("random:"))
    old, new = before.get("Cluster", CLUSTER), after.get("Cluster", CLUSTER)
    assert old["metadata"] == new["metadata"]
    assert (new["spec"]["imageName"], new["spec"]["instances"]) == ("ghcr.io/cloudnative-pg/postgresql:16.6", 5)
    assert {k: v for k, v in old["spec"].items() if k not in ("imageName", "instances", "resources", "postgresql",
                                                                "managed", "backup")} == {
        k: v for k, v in new["spec"].items() if k not in ("imageName", "instances", "resources", "postgresql",
                                                            "managed", "backup")}
    assert before.get("Database", f"{CLUSTER}-codai") == after.get("Database", f"{CLUSTER}-codai")
    old_redis, new_redis = before.get("StatefulSet", "redis"), after.get("StatefulSet", "redis")
    assert {k: old_redis["spec"][k] for k in IMMUTABLE} == {k: new_redis["spec"][k] for k in IMMUTABLE}
    assert old_redis["spec"]["template"] != new_redis["spec"]["template"]  # the change did land, in place


def test_urns_are_a_contract():
    run = data_run("production")
    urns = {r.urn.rsplit("::", 1)[1] for r in run.resources}
    assert {"postgres-cluster", "postgres-database-codai", "postgres-pooler-core", "postgres-pooler-business",
            "postgres-pooler-support", "postgres-scheduled-backup", "postgres-client-codai-login",
            "postgres-client-codai-password", "postgres-client-codai-secret", "postgres-network-policy",
            "postgres-pooler-core-network-policy", "postgres-metrics-service", "postgres-service-monitor",
            "postgres-pooler-metrics-service", "postgres-pooler-service-monitor", "redis-statefulset",
            "redis-users-secret", "redis-client-hub-secret"} <= urns
    assert run.resource("Cluster", CLUSTER).urn == (
        "urn:pulumi:production::codai-platform::codai:data:Postgres$kubernetes:postgresql.cnpg.io/v1:Cluster"
        "::postgres-cluster")
    external = {r.urn.rsplit("::", 1)[1] for r in external_postgres().resources}
    assert {"postgres-bootstrap-job", "postgres-backup-cronjob", "postgres-client-codai-secret"} <= external


def test_servers_start_after_the_secrets_they_read():
    run = data_run("production")
    urn = {r.name: r.urn for r in run.resources}
    cluster = run.resource("Cluster", CLUSTER)
    # The operator creates each managed role from its login Secret: they exist first.
    assert {urn[f"postgres-client-{s}-login"] for s in PG_CLIENTS} <= set(cluster.depends_on)
    for kind in ("Database", "Pooler", "ScheduledBackup"):
        for obj in run.of_kind(kind):
            assert cluster.urn in run.resource(kind, obj["metadata"]["name"]).depends_on, obj["metadata"]["name"]
    assert urn["redis-users-secret"] in run.resource("StatefulSet", "redis").depends_on
    external = external_postgres()
    urn = {r.name: r.urn for r in external.resources}
    job = next(r for r in external.resources if r.name == "postgres-bootstrap-job")
    assert {urn["postgres-bootstrap-config"], urn["postgres-scripts"], urn["postgres-client-codai-secret"]} <= set(
        job.depends_on)


# --- credentials and bindings -------------------------------------------------------------------------------


def test_each_postgres_client_gets_its_own_database_url_and_nobody_else_does():
    run = data_run("production")
    urls = {}
    for service in PG_CLIENTS:
        data = secret_data(run, f"{service}-postgres")
        role = sql.identifier(service)
        password = mock_password(f"postgres-client-{service}-password")
        # Its tier's PgBouncers (the Pooler's Service), encrypted with the operator's certificate.
        host = f"{pooler(tier_of(service))}.codai.svc"
        assert data["DATABASE_URL"] == f"postgresql://{role}:{password}@{host}:5432/{role}?sslmode=require"
        assert (data["PGHOST"], data["PGPORT"], data["PGSSLMODE"]) == (host, "5432", "require")
        assert (data["PGUSER"], data["PGDATABASE"], data["PGPASSWORD"]) == (role, role, password)
        # The login the operator reads: the same role and password, reloaded into the server when it changes.
        assert secret_data(run, f"{service}-postgres-login") == {"username": role, "password": password}
        login = run.get("Secret", f"{service}-postgres-login")
        assert (login["type"], login["metadata"]["labels"]["cnpg.io/reload"]) == ("kubernetes.io/basic-auth", "true")
        urls[service] = data["DATABASE_URL"]
    assert len(set(urls.values())) == len(PG_CLIENTS) == 23
    # A client reaches its own tier's PgBouncers, never another tier's, never the instances.
    assert run.outputs["bindings"]["postgres"] == {
        service: {"secret": f"{service}-postgres", "egress": [{
            "to": [{"pod_selector": {"match_labels": {"cnpg.io/poolerName": pooler(tier_of(service))}}}],
            "ports": [{"protocol": "TCP", "port": 5432}]}]}
        for service in PG_CLIENTS}
    assert {host.split(".")[0] for host in (secret_data(run, f"{s}-postgres")["PGHOST"] for s in PG_CLIENTS)} == {
        o["metadata"]["name"] for o in run.of_kind("Pooler")}


def test_passwords_are_generated_url_safe_and_only_in_secrets():
    run = data_run("production")
    passwords = [r for r in run.resources if r.type == "random:index/randomPassword:RandomPassword"]
    assert all(r.inputs["length"] == 32 and r.inputs["special"] is False for r in passwords)
    values = [mock_password(r.name) for r in passwords]
    for obj in run.kubernetes_objects(redact=False):
        if obj["kind"] != "Secret":
            text = json.dumps(obj)
            assert not any(value in text for value in values), obj["metadata"]["name"]
    for obj in run.of_kind("Secret"):  # the render shows none of them
        assert set(obj["stringData"].values()) == {"<redacted>"}


def test_each_redis_client_gets_a_user_confined_to_its_prefix():
    # One server: the URL names it (test_redis_replication.py: what a replicated Redis hands out).
    run = data_run("production", '{"redis": {"instances": 1}}')
    passwords = {service: mock_password(f"redis-client-{service}-password") for service in REDIS_CLIENTS}
    for service, password in passwords.items():
        data = secret_data(run, f"{service}-redis")
        assert data["REDIS_URL"] == f"redis://{service}:{password}@redis.codai.svc:6379/0"
        assert (data["REDIS_USERNAME"], data["REDIS_KEY_PREFIX"], data["REDIS_TLS"]) == (service, f"{service}:",
                                                                                        "false")
    acl_file = secret_data(run, "redis-users")["users.acl"]

    def digest(user: str) -> str:
        return hashlib.sha256(passwords.get(user, mock_password(f"redis-{user}-password")).encode()).hexdigest()

    denied = "-@dangerous -scan -randomkey -function -script|flush -script|kill"
    exporter = ("-@all +ping +hello +select +client|setname +client|getname +client|info +client|list +info "
                "+config|get +slowlog|get +slowlog|len +latency|latest +latency|histogram +memory|stats "
                "+cluster|info +dbsize")
    expected = [*(f"user {s} reset on #{digest(s)} ~{s}:* &{s}:* +@all {denied}" for s in REDIS_CLIENTS),
                f"user exporter reset on #{digest('exporter')} {exporter}",
                f"user healthcheck reset on #{digest('healthcheck')} -@all +ping",
                "user default reset -@all"]
    assert len(REDIS_CLIENTS) == 15
    assert acl_file == "".join(f"{line}\n" for line in sorted(expected))  # one line per user, by name
    assert passwords["codai"] not in acl_file


def test_binding_for_refuses_a_service_that_did_not_declare_the_dependency():
    bindings = data_run("staging").outputs["bindings"]
    assert sorted(bindings["postgres"]) == PG_CLIENTS and "publicai" not in bindings["postgres"]
    assert sorted(bindings["redis"]) == REDIS_CLIENTS and "admin" not in bindings["redis"]


def test_external_servers_get_urls_egress_and_a_bootstrap_from_the_stack():
    run = run_with("production", postgres=EXTERNAL_POSTGRES, redis=EXTERNAL_REDIS)
    assert not run.of_kind("StatefulSet") and not run.of_kind("Service") and not run.of_kind("ServiceMonitor")
    data = secret_data(run, "codai-postgres")
    assert data["DATABASE_URL"].endswith("@db.internal.example.com:5432/codai?sslmode=verify-full&sslrootcert=system")
    assert secret_data(run, "codai-redis")["REDIS_URL"].startswith("rediss://codai:")
    bindings = run.outputs["bindings"]
    assert bindings["postgres"]["codai"]["egress"] == [
        {"to": [{"ip_block": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 5432}]}]
    assert bindings["redis"]["hub"]["egress"] == [{"to": [{"ip_block": {"cidr": "10.30.0.0/16"}},
                                                          {"ip_block": {"cidr": "10.31.0.0/16"}}],
                                                   "ports": [{"protocol": "TCP", "port": 6379}]}]
    (pg_job,) = [o for o in run.of_kind("Job") if o["metadata"]["name"].startswith("postgres-bootstrap-")]
    pod = pg_job["spec"]["template"]["spec"]
    assert env(pod["containers"][0])["PGHOST"] == "db.internal.example.com"
    assert {"name": "admin", "secret": {"secretName": "pg-admin", "defaultMode": 0o440, "items": [
        {"key": "username", "path": "username"}, {"key": "password", "path": "password"}]}} in pod["volumes"]
    # The same users as in the cluster, applied with ACL SETUSER; the provider's default user turned off.
    commands = secret_data(run, "redis-bootstrap")["commands"]
    password = mock_password("redis-client-hub-password")
    assert f"ACL SETUSER hub reset on #{hashlib.sha256(password.encode()).hexdigest()} ~hub:* &hub:*" in commands
    assert "ACL SETUSER default reset -@all" in commands and password not in commands
    (redis_job,) = [o for o in run.of_kind("Job") if o["metadata"]["name"].startswith("redis-bootstrap-")]
    assert {"key": "user", "path": "username"} in redis_job["spec"]["template"]["spec"]["volumes"][-1]["secret"][
        "items"]


# --- reachability --------------------------------------------------------------------------------------------


def prometheus_rule(stack: str, port: int) -> dict[str, Any]:
    monitoring = load_settings(stack, stack_values(stack)).settings.monitoring
    return {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": monitoring.namespace}},
                      "podSelector": {"matchLabels": monitoring.prometheus_pod_labels}}],
            "ports": [{"protocol": "TCP", "port": port}]}


def clients_rule(clients: list[str], port: int) -> dict[str, Any]:
    return {"from": [{"podSelector": {"matchExpressions": [
        {"key": "app.kubernetes.io/name", "operator": "In", "values": clients}]}}],
        "ports": [{"protocol": "TCP", "port": port}]}


def test_only_declared_clients_and_prometheus_reach_the_servers():
    # One Redis server (test_redis_replication.py: what replicated servers add).
    run = data_run("production", '{"redis": {"instances": 1}}')
    spec = run.get("NetworkPolicy", "redis")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and "egress" not in spec
    assert spec["ingress"] == [clients_rule(REDIS_CLIENTS, 6379), prometheus_rule("production", 9121)]
    # PostgreSQL: each tier's clients reach that tier's PgBouncers, and nothing else of PostgreSQL.
    assert sorted(s for clients in PG_TIERS.values() for s in clients) == PG_CLIENTS
    for tier, clients in PG_TIERS.items():
        spec = run.get("NetworkPolicy", pooler(tier))["spec"]
        assert spec["podSelector"] == {"matchLabels": {"cnpg.io/poolerName": pooler(tier)}}
        assert spec["ingress"] == [clients_rule(clients, 5432), prometheus_rule("production", 9127)], tier
    # The instances take SQL from each other and from the PgBouncers only, the status port from each other
    # and the operator, and Prometheus on the exporter's port: no service reaches them directly.
    spec = run.get("NetworkPolicy", "postgres")["spec"]
    cluster_pods = {"matchLabels": {"cnpg.io/cluster": CLUSTER}, "matchExpressions": [
        {"key": "cnpg.io/podRole", "operator": "NotIn", "values": ["pooler"]}]}
    assert spec["podSelector"] == cluster_pods
    assert spec["ingress"] == [
        {"from": [{"podSelector": cluster_pods}, {"podSelector": {"matchLabels": EVERY_POOLER}}],
         "ports": [{"protocol": "TCP", "port": 5432}]},
        {"from": [{"podSelector": cluster_pods},
                  {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}}}],
         "ports": [{"protocol": "TCP", "port": 8000}]},
        prometheus_rule("production", 9187)]
    elsewhere = run_with("production", postgres={"operatorNamespace": "postgres-operator"})
    assert elsewhere.get("NetworkPolicy", "postgres")["spec"]["ingress"][1]["from"][1] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "postgres-operator"}}}


def test_jobs_of_a_managed_server_reach_only_it_and_an_upload_the_store_over_https():
    run = external_postgres(backup={"target": "volume"})
    for job in ("bootstrap", "backup"):
        spec = run.get("NetworkPolicy", f"postgres-{job}")["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == job
        assert "ingress" not in spec and spec["egress"] == [
            {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 5432}]}]
    egress = external_postgres().get("NetworkPolicy", "postgres-backup")["spec"]["egress"]
    assert egress[-1]["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "10.0.0.0/8" in egress[-1]["to"][0]["ipBlock"]["except"]
    # In the cluster no job of ours connects: the operator creates the roles and databases.
    assert not [p for p in data_run("production").of_kind("NetworkPolicy")
                if p["metadata"]["name"] in ("postgres-bootstrap", "postgres-backup")]


def test_service_monitors_scrape_the_exporters_for_the_operator():
    run = data_run("production")
    monitoring = load_settings("production", stack_values("production")).settings.monitoring
    # The instances' and the PgBouncers' exporters are the operator's (9187, 9127), behind Services of ours.
    for name, port, target, pods in (("postgres", 9187, 9187, INSTANCES),
                                     ("postgres-pooler", 9127, 9127, EVERY_POOLER),
                                     ("redis", 9121, "metrics", None)):
        monitor = run.get("ServiceMonitor", name)
        assert monitor["metadata"]["labels"].items() >= monitoring.selector_labels.items()
        service = run.get("Service", f"{name}-metrics")
        # Each monitor selects its own Service, and only it.
        selected = [s for s in run.of_kind("Service")
                    if selector_matches(monitor["spec"]["selector"], s["metadata"]["labels"])]
        assert selected == [service], name
        assert service["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": target,
                                             "protocol": "TCP"}]
        if pods is not None:
            assert service["spec"]["selector"] == pods
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


# --- a managed server: bootstrap and backups -------------------------------------------------------------------


def bootstrap_job(run: StackRun, name: str = "postgres") -> dict[str, Any]:
    (job,) = [o for o in run.of_kind("Job") if o["metadata"]["name"].startswith(f"{name}-bootstrap-")]
    return job


def test_the_bootstrap_job_runs_the_generated_sql_with_every_role_password():
    run = external_postgres()
    data = run.get("ConfigMap", "postgres-bootstrap")["data"]
    assert list(data) == ["bootstrap.sql"]
    text = data["bootstrap.sql"]
    assert len(PG_CLIENTS) == 23 and all(sql.identifier(s) == s for s in PG_CLIENTS)  # no name needs mapping
    assert re.findall(r"`cat '(.*?)'`", text) == [f"/run/codai/passwords/{role}" for role in PG_CLIENTS]
    assert re.findall(r'CREATE ROLE "(\w+)"', text) == PG_CLIENTS
    # each service gets the default connectionLimitPerService (40)
    assert re.findall(r'ALTER ROLE "(\w+)" WITH .*CONNECTION LIMIT (\d+) ', text) == [(s, "40") for s in PG_CLIENTS]
    assert re.findall(r'CREATE DATABASE "(\w+)" OWNER "(\w+)"', text) == [(s, s) for s in PG_CLIENTS]
    # The provider's own databases and roles are left alone, and no exporter of ours needs a monitor role.
    assert '"postgres"' not in text and "pg_monitor" not in text
    pod = bootstrap_job(run)["spec"]["template"]["spec"]
    (projected,) = [v["projected"] for v in pod["volumes"] if "projected" in v]
    files = {s["secret"]["items"][0]["path"]: s["secret"]["name"] for s in projected["sources"]}
    assert files == {sql.identifier(s): f"{s}-postgres" for s in PG_CLIENTS}
    assert pod["containers"][0]["command"] == ["sh", "/scripts/bootstrap-postgres.sh", "/bootstrap/bootstrap.sql"]
    folder = ROOT / "components" / "data" / "scripts"
    script_names = ["backup.sh", "bootstrap-postgres.sh", "common.sh", "restore.sh", "upload.sh"]
    assert run.get("ConfigMap", "postgres-scripts")["data"] == {
        name: (folder / name).read_text() for name in script_names}


def test_the_bootstrap_job_is_renamed_by_what_it_applies_only():
    name = bootstrap_job(external_postgres())["metadata"]["name"]
    assert re.fullmatch(r"postgres-bootstrap-[0-9a-f]{10}", name), name
    # The program run again for real (data_run caches its runs): the same input gives the same name.
    again = data_run.__wrapped__("production", json.dumps({"postgres": EXTERNAL_POSTGRES}, sort_keys=True))
    assert bootstrap_job(again)["metadata"]["name"] == name
    unrelated = run_with("production", postgres={**EXTERNAL_POSTGRES, "backup": {
        **EXTERNAL_POSTGRES["backup"], "schedule": "0 4 * * *", "keep": 30}}, environment={"release": "2025.1.0"})
    assert bootstrap_job(unrelated)["metadata"]["name"] == name
    changed = external_postgres(connectionLimitPerService=20)
    assert bootstrap_job(changed)["metadata"]["name"] != name


def test_backups_dump_every_service_database_on_schedule():
    run = run_with("production", postgres=EXTERNAL_POSTGRES_ON_A_VOLUME)
    cron = run.get("CronJob", "postgres-backup")["spec"]
    assert (cron["schedule"], cron["timeZone"], cron["concurrencyPolicy"]) == ("30 2 * * *", "Etc/UTC", "Forbid")
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    (dump,) = pod["containers"]
    variables = env(dump)
    assert variables["BACKUP_DATABASES"].split() == sorted(sql.identifier(s) for s in PG_CLIENTS)
    assert (variables["BACKUP_DIR"], variables["BACKUP_KEEP"]) == ("/backups", "7")
    assert variables["PGHOST"] == "db.internal.example.com"
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "postgres-backups"}} in pod["volumes"]
    storage = run.get("PersistentVolumeClaim", "postgres-backups")["spec"]["resources"]["requests"]["storage"]
    assert storage == "200Gi"


def test_an_object_store_target_dumps_to_scratch_then_uploads():
    run = external_postgres()
    assert not [o for o in run.of_kind("PersistentVolumeClaim") if o["metadata"]["name"].startswith("postgres")]
    cron = run.get("CronJob", "postgres-backup")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (dump,), (upload,) = pod["initContainers"], pod["containers"]
    assert env(dump)["BACKUP_KEEP"] == "1" and env(upload)["BACKUP_KEEP"] == "14"
    assert env(upload)["BACKUP_REMOTE"] == ":s3:codai-backups/production"
    assert upload["envFrom"] == [{"secretRef": {"name": "backup-s3"}}]
    (scratch,) = [v for v in pod["volumes"] if v["name"] == "backups"]
    assert scratch["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert any(v.startswith("CKV_K8S_35=") for v in cron["metadata"]["annotations"].values())


# --- configuration and sizing ------------------------------------------------------------------------------------


#: Redis's maxmemory per stack: 80 % of its memory limit, 256Mi in staging and 1Gi in production.
MAXMEMORY = {"staging": 256 * 2**20 * 80 // 100, "production": 2**30 * 80 // 100}


def test_redis_persists_every_write_because_clients_keep_state_there():
    """Eight services keep state in Redis (catalog ``redis_use``), so the shared server appends every write."""
    for stack in ("staging", "production"):
        conf = data_run(stack).get("ConfigMap", "redis-config")["data"]["redis.conf"]
        assert "\nappendonly yes\nappendfsync everysec\n" in conf, stack


def test_a_redis_of_caches_only_keeps_nothing_on_disk():
    caches = [spec for spec in CATALOG.using(Dependency.REDIS) if spec.redis_use == RedisUse.CACHE]
    assert len(caches) == 7

    def program() -> None:
        Redis("redis", RedisArgs(settings=RedisSettings(), namespace="codai", clients=caches,
                                 sizing=SizingProfile.MINIMAL, protect_stateful=False,
                                 scraping=Scraping.of(MonitoringSettings())))

    conf = run_stack("staging", config={}, program=program).get("ConfigMap", "redis-config")["data"]["redis.conf"]
    assert "\nappendonly no\n" in conf and "appendfsync" not in conf


def test_redis_runs_the_generated_configuration_for_its_memory_limit():
    for stack, maxmemory in MAXMEMORY.items():
        redis_conf = data_run(stack).get("ConfigMap", "redis-config")["data"]["redis.conf"]
        assert f"\nmaxmemory {maxmemory}\n" in redis_conf and "\nmaxmemory-policy volatile-lru\n" in redis_conf
        assert "\naclfile /run/codai/redis/users.acl\n" in redis_conf and "\nport 6379\n" in redis_conf


#: What the data tier asks of the quota per stack, from the rendered objects: PostgreSQL instances x the
#: server, 3 Poolers (one per tier) x their PgBouncers, Redis servers x (server, exporter[, sentinel and its
#: exporter]). CPU in millicores, memory in Mi; volumes: one per PostgreSQL instance and per Redis server.
#:   staging:    1 x 250 + 3 x 1 x 20 + 1 x (100 + 20) = 430m; 1 x 1024 + 3 x 32 + (256 + 32) = 1408Mi requests,
#:               1024 + 3 x 64 + (256 + 64) = 1536Mi limits; 1 + 3 + 1 = 5 pods; 1 + 1 = 2 claims, 10Gi + 2Gi
#:   production: 3 x 1000 + 3 x 2 x 100 + 3 x (250 + 50 + 20 + 20) = 4620m; 3 x 4096 + 6 x 64 + 3 x (1024 + 64 + 32
#:               + 32) = 16128Mi requests, 3 x 4096 + 6 x 128 + 3 x (1024 + 128 + 64 + 64) = 16896Mi limits;
#:               3 + 6 + 3 = 12 pods; 3 + 3 = 6 claims, 3 x 100Gi + 3 x 10Gi
QUOTA_FIGURES = {"staging": (430, 1408, 1536, 5, 2, 12), "production": (4620, 16128, 16896, 12, 6, 330)}


def rendered_footprint(run: StackRun) -> tuple[int, int, int, int, int, int]:
    """(CPU m, memory Mi, memory limits Mi, pods, claims, storage Gi) of the render's always-running data tier."""
    pods: list[tuple[int, list[dict[str, Any]]]] = []  # (how many, their containers' resources)
    claims, storage = 0, 0
    for cluster in run.of_kind("Cluster"):
        spec = cluster["spec"]
        pods.append((spec["instances"], [spec["resources"]]))
        claims += spec["instances"]
        storage += spec["instances"] * Memory.parse(spec["storage"]["size"]).bytes
    for pooler_object in run.of_kind("Pooler"):
        spec = pooler_object["spec"]
        pods.append((spec["instances"], [c["resources"] for c in spec["template"]["spec"]["containers"]]))
    for statefulset in run.of_kind("StatefulSet"):
        spec = statefulset["spec"]
        pods.append((spec["replicas"], [c["resources"] for c in spec["template"]["spec"]["containers"]]))
        for template in spec["volumeClaimTemplates"]:
            claims += spec["replicas"]
            storage += spec["replicas"] * Memory.parse(template["spec"]["resources"]["requests"]["storage"]).bytes
    claims += len(run.of_kind("PersistentVolumeClaim"))
    storage += sum(Memory.parse(c["spec"]["resources"]["requests"]["storage"]).bytes
                   for c in run.of_kind("PersistentVolumeClaim"))

    def total(kind: str, key: str, parse: Callable[[str], int]) -> int:
        return sum(n * parse(r[kind][key]) for n, resources in pods for r in resources)

    return (total("requests", "cpu", lambda v: Cpu.parse(v).millis),
            total("requests", "memory", lambda v: Memory.parse(v).bytes) // 2**20,
            total("limits", "memory", lambda v: Memory.parse(v).bytes) // 2**20,
            sum(n for n, _ in pods), claims, storage // 2**30)


@pytest.mark.parametrize("stack_name", ["staging", "production"])
def test_the_data_tier_fits_the_quota_beside_every_service_at_its_ceiling(stack_name):
    platform = load_settings(stack_name, stack_values(stack_name))
    assert len(platform.pooled_tiers) == len(PG_TIERS) == 3
    data = footprint(platform.settings.postgres, platform.settings.redis, platform.settings.environment.sizing,
                     poolers=3)
    counted = (data.cpu_requests.millis, data.memory_requests.bytes // 2**20, data.memory_limits.bytes // 2**20,
               data.pods, data.persistent_volume_claims, data.storage_requests.bytes // 2**30)
    # What the settings count is what the program renders, and both are the figures worked out above.
    assert rendered_footprint(data_run(stack_name)) == counted == QUOTA_FIGURES[stack_name]
    assert platform.data_tier == data
    demand, quota = platform.demand(), platform.quota
    assert demand.cpu.millis <= quota.requests_cpu.millis and demand.memory.bytes <= quota.requests_memory.bytes
    assert demand.memory_limits.bytes <= quota.limits_memory.bytes and demand.pods <= quota.pods
    assert data.storage_requests.bytes <= quota.requests_storage.bytes
    assert data.persistent_volume_claims <= quota.persistent_volume_claims
