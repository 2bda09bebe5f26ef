"""The PostgreSQL and Redis components under Pulumi's mocks: what they register, and what it says."""

from __future__ import annotations

import hashlib
import json
import re
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
from settings.data import PostgresSettings, RedisSettings, footprint
from settings.defaults import SizingProfile
from settings.loader import load_settings
from settings.monitoring import MonitoringSettings
from settings.quantities import Cpu
from tools.offline import ROOT, StackRun, run_stack, stack_values
from tools.validate import lint, load_crd_schemas


def data_tier_program(stack: str, values: dict[str, Any]) -> Callable[[], None]:
    """PostgreSQL and Redis on their own, behind a namespace; exports what each hands its clients."""

    def program() -> None:
        rest = dict(values)
        postgres_settings = PostgresSettings.model_validate(rest.pop("postgres", {}))
        redis_settings = RedisSettings.model_validate(rest.pop("redis", {}))
        environment = load_settings(stack, rest).settings.environment
        namespace = environment.namespace
        scraping = Scraping.of(MonitoringSettings())
        postgres = PostgresArgs(settings=postgres_settings, namespace=namespace, sizing=environment.sizing,
                                protect_stateful=environment.protect_stateful, scraping=scraping,
                                clients=CATALOG.using(Dependency.POSTGRES), priority_class_name=f"{namespace}-core")
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

EXTERNAL_POSTGRES = {
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
def test_objects_are_valid_for_kubernetes_and_the_operator_crds(any_run, version):
    crds = load_crd_schemas()
    for obj in objects(any_run):
        key = (obj["apiVersion"], obj["kind"])
        if key in crds:
            jsonschema.validate(obj, crds[key])
        else:
            kubernetes_validate.validate(obj, version, strict=True)
    # Secrets the stack names but this program does not make (admin credentials, bucket keys).
    made_elsewhere = (PostgresSettings.model_validate(EXTERNAL_POSTGRES).referenced_secrets()
                      | RedisSettings.model_validate(EXTERNAL_REDIS).referenced_secrets())
    assert made_elsewhere == {"pg-admin", "redis-admin", "backup-s3"}
    assert [e for e in lint(objects(any_run)) if not any(f" {name} " in e for name in made_elsewhere)] == []


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


def test_servers_and_exporters_have_probes():
    run = data_run("production")
    for name in ("postgres", "redis"):
        pod = run.get("StatefulSet", name)["spec"]["template"]["spec"]
        server, exporter = pod["containers"][:2]  # then, in a replicated Redis, a sentinel and its exporter
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= server.keys()
        assert {"livenessProbe", "readinessProbe"} <= exporter.keys()
        # The first start may initialise a database: the startup probe allows ten minutes.
        startup = server["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


# --- data safety -----------------------------------------------------------------------------------------


def test_volumes_are_retained_always_and_stateful_resources_protected_where_the_stack_says(stack):
    run = data_run(stack)
    protect = load_settings(stack, stack_values(stack)).settings.environment.protect_stateful
    assert protect is (stack == "production")
    for kind, name in (("StatefulSet", "postgres"), ("StatefulSet", "redis"), ("PersistentVolumeClaim",
                                                                               "postgres-backups")):
        resource = run.resource(kind, name)
        # The backup volume stays when the stack goes; a server goes, and its volumes stay.
        assert resource.retain_on_delete is (kind == "PersistentVolumeClaim"), name
        assert resource.protect is protect, name
    for name in ("postgres", "redis"):
        # A new storage size or class never replaces the server: live volumes grow by claim expansion.
        assert run.resource("StatefulSet", name).ignore_changes == ["spec.volumeClaimTemplates"]
        retention = run.get("StatefulSet", name)["spec"]["persistentVolumeClaimRetentionPolicy"]
        assert retention == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    budget = run.get("PodDisruptionBudget", "postgres")["spec"]["maxUnavailable"]
    assert budget == (0 if protect else 1)


IMMUTABLE = ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy")


def test_changing_unrelated_settings_replaces_no_stateful_resource():
    before = data_run("production")
    after = run_with(
        "production",
        environment={"release": "2025.1.0"},
        postgres={"image": "postgres:16.6-bookworm", "resources": {"limits": {"memory": "8Gi"}},
                  "exporterImage": "quay.io/prometheuscommunity/postgres-exporter:v0.16.0", "maxConnections": 300,
                  "parameters": {"work_mem": "16MB"}, "backup": {"schedule": "0 4 * * *", "keep": 30}},
        redis={"evictionPolicy": "allkeys-lru", "maxmemoryPercent": 70, "resources": {"requests": {"cpu": "500m"}}},
    )
    for name in ("postgres", "redis"):
        old, new = before.get("StatefulSet", name), after.get("StatefulSet", name)
        assert {k: old["spec"][k] for k in IMMUTABLE} == {k: new["spec"][k] for k in IMMUTABLE}, name
        assert before.resource("StatefulSet", name).urn == after.resource("StatefulSet", name).urn
        assert old["spec"]["template"] != new["spec"]["template"]  # the change did land, in place
    assert before.get("PersistentVolumeClaim", "postgres-backups") == after.get("PersistentVolumeClaim",
                                                                                "postgres-backups")


def test_urns_are_a_contract():
    urns = {r.urn.rsplit("::", 1)[1] for r in data_run("production").resources}
    assert {"postgres-statefulset", "postgres-service", "postgres-headless-service", "postgres-metrics-service",
            "postgres-pdb", "postgres-network-policy", "postgres-bootstrap-job", "postgres-backup-cronjob",
            "postgres-backups-pvc", "postgres-admin-password", "postgres-client-codai-password",
            "postgres-client-codai-secret", "redis-statefulset", "redis-users-secret",
            "redis-client-hub-secret"} <= urns


def test_servers_start_after_the_secrets_their_pods_mount():
    run = data_run("production")
    urn = {r.name: r.urn for r in run.resources}
    assert {urn["postgres-admin-secret"], urn["postgres-monitor-secret"]} <= set(
        run.resource("StatefulSet", "postgres").depends_on)
    assert urn["redis-users-secret"] in run.resource("StatefulSet", "redis").depends_on
    job = next(r for r in run.resources if r.name == "postgres-bootstrap-job")
    assert {urn["postgres-statefulset"], urn["postgres-bootstrap-config"], urn["postgres-client-codai-secret"]} <= set(
        job.depends_on)


# --- credentials and bindings -------------------------------------------------------------------------------


def test_each_postgres_client_gets_its_own_database_url_and_nobody_else_does():
    run = data_run("production")
    urls = {}
    for service in PG_CLIENTS:
        data = secret_data(run, f"{service}-postgres")
        role = sql.identifier(service)
        password = mock_password(f"postgres-client-{service}-password")
        assert data["DATABASE_URL"] == (f"postgresql://{role}:{password}@postgres.codai.svc:5432/{role}"
                                        "?sslmode=disable")
        assert (data["PGUSER"], data["PGDATABASE"], data["PGPASSWORD"]) == (role, role, password)
        urls[service] = data["DATABASE_URL"]
    assert len(set(urls.values())) == len(PG_CLIENTS) == 23
    assert run.outputs["bindings"]["postgres"] == {
        service: {"secret": f"{service}-postgres", "egress": [{
            "to": [{"pod_selector": {"match_labels": {
                "app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": "postgres",
                "app.kubernetes.io/part-of": "codai", "app.kubernetes.io/component": "database"}}}],
            "ports": [{"protocol": "TCP", "port": 5432}]}]}
        for service in PG_CLIENTS}


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


def test_only_declared_clients_jobs_and_prometheus_reach_the_servers():
    # One server each (test_redis_replication.py: what replicated servers add).
    run = data_run("production", '{"redis": {"instances": 1}}')
    monitoring = load_settings("production", stack_values("production")).settings.monitoring
    for name, port, metrics, clients, jobs in (("postgres", 5432, 9187, PG_CLIENTS, ["bootstrap", "backup"]),
                                               ("redis", 6379, 9121, REDIS_CLIENTS, [])):
        spec = run.get("NetworkPolicy", name)["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"] and "egress" not in spec
        server_rule, prometheus_rule = spec["ingress"]
        assert server_rule["ports"] == [{"protocol": "TCP", "port": port}]
        peers = server_rule["from"]
        assert peers[0]["podSelector"]["matchExpressions"] == [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": clients}]
        assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers[1:]] == jobs
        assert prometheus_rule == {"from": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": monitoring.namespace}},
            "podSelector": {"matchLabels": monitoring.prometheus_pod_labels}}],
            "ports": [{"protocol": "TCP", "port": metrics}]}


def test_jobs_reach_only_the_server_and_an_upload_the_store_over_https():
    run = data_run("production")
    for job in ("bootstrap", "backup"):
        spec = run.get("NetworkPolicy", f"postgres-{job}")["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == job
        assert "ingress" not in spec and [rule["ports"] for rule in spec["egress"]] == [
            [{"protocol": "TCP", "port": 5432}]]
    store = run_with("production", postgres={"backup": EXTERNAL_POSTGRES["backup"]})
    egress = store.get("NetworkPolicy", "postgres-backup")["spec"]["egress"]
    assert egress[-1]["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "10.0.0.0/8" in egress[-1]["to"][0]["ipBlock"]["except"]


def test_service_monitors_scrape_the_exporters_for_the_operator():
    run = data_run("production")
    monitoring = load_settings("production", stack_values("production")).settings.monitoring
    for name, port in (("postgres", 9187), ("redis", 9121)):
        monitor = run.get("ServiceMonitor", name)
        assert monitor["metadata"]["labels"].items() >= monitoring.selector_labels.items()
        service = run.get("Service", f"{name}-metrics")
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert service["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics",
                                             "protocol": "TCP"}]
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


# --- bootstrap and backups ------------------------------------------------------------------------------------


def bootstrap_job(run: StackRun, name: str = "postgres") -> dict[str, Any]:
    (job,) = [o for o in run.of_kind("Job") if o["metadata"]["name"].startswith(f"{name}-bootstrap-")]
    return job


def test_the_bootstrap_job_runs_the_generated_sql_with_every_role_password():
    run = data_run("production")
    data = run.get("ConfigMap", "postgres-bootstrap")["data"]
    assert list(data) == ["bootstrap.sql"]
    text = data["bootstrap.sql"]
    assert len(PG_CLIENTS) == 23 and all(sql.identifier(s) == s for s in PG_CLIENTS)  # no name needs mapping
    roles = ["codai_monitor", *PG_CLIENTS]
    assert re.findall(r"`cat '(.*?)'`", text) == [f"/run/codai/passwords/{role}" for role in roles]
    assert re.findall(r'CREATE ROLE "(\w+)"', text) == roles
    # the monitor gets 5 connections, each service the default connectionLimitPerService (40)
    assert re.findall(r'ALTER ROLE "(\w+)" WITH .*CONNECTION LIMIT (\d+) ', text) == [
        ("codai_monitor", "5"), *((s, "40") for s in PG_CLIENTS)]
    assert re.findall(r'CREATE DATABASE "(\w+)" OWNER "(\w+)"', text) == [(s, s) for s in PG_CLIENTS]
    # the databases initdb opens to everyone are closed (an in-cluster server is the program's own)
    assert 'REVOKE CONNECT, TEMPORARY ON DATABASE "postgres" FROM PUBLIC;' in text
    assert 'GRANT pg_monitor TO "codai_monitor";' in text
    pod = bootstrap_job(run)["spec"]["template"]["spec"]
    (projected,) = [v["projected"] for v in pod["volumes"] if "projected" in v]
    files = {s["secret"]["items"][0]["path"]: s["secret"]["name"] for s in projected["sources"]}
    assert files == {**{sql.identifier(s): f"{s}-postgres" for s in PG_CLIENTS}, sql.MONITOR_ROLE: "postgres-monitor"}
    assert pod["containers"][0]["command"] == ["sh", "/scripts/bootstrap-postgres.sh", "/bootstrap/bootstrap.sql"]
    folder = ROOT / "components" / "data" / "scripts"
    script_names = ["backup.sh", "bootstrap-postgres.sh", "common.sh", "restore.sh", "upload.sh"]
    assert run.get("ConfigMap", "postgres-scripts")["data"] == {
        name: (folder / name).read_text() for name in script_names}


def test_the_bootstrap_job_is_renamed_by_what_it_applies_only():
    name = bootstrap_job(data_run("production"))["metadata"]["name"]
    assert re.fullmatch(r"postgres-bootstrap-[0-9a-f]{10}", name), name
    # The program run again for real (data_run caches its runs): the same input gives the same name.
    assert bootstrap_job(data_run.__wrapped__("production"))["metadata"]["name"] == name
    unrelated = run_with("production", postgres={"resources": {"limits": {"memory": "8Gi"}}},
                         environment={"release": "2025.1.0"})
    assert bootstrap_job(unrelated)["metadata"]["name"] == name
    changed = run_with("production", postgres={"connectionLimitPerService": 20})
    assert bootstrap_job(changed)["metadata"]["name"] != name


def test_backups_dump_every_service_database_on_schedule():
    run = data_run("production")
    cron = run.get("CronJob", "postgres-backup")["spec"]
    assert (cron["schedule"], cron["timeZone"], cron["concurrencyPolicy"]) == ("30 2 * * *", "Etc/UTC", "Forbid")
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    (dump,) = pod["containers"]
    variables = env(dump)
    assert variables["BACKUP_DATABASES"].split() == sorted(sql.identifier(s) for s in PG_CLIENTS)
    assert (variables["BACKUP_DIR"], variables["BACKUP_KEEP"]) == ("/backups", "7")
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "postgres-backups"}} in pod["volumes"]
    storage = run.get("PersistentVolumeClaim", "postgres-backups")["spec"]["resources"]["requests"]["storage"]
    assert storage == "200Gi"


def test_an_object_store_target_dumps_to_scratch_then_uploads():
    run = run_with("production", postgres={"backup": EXTERNAL_POSTGRES["backup"]})
    assert not run.of_kind("PersistentVolumeClaim")
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


#: Memory-derived settings per stack: PostgreSQL's limit is 1Gi in staging and 4Gi in production (a quarter
#: for shared buffers, three quarters for the cache, work_mem for 200 connections), Redis's 256Mi and 1Gi (80 %).
CONFIGURED = {"staging": ("256MB", "768MB", "4MB", 256 * 2**20 * 80 // 100),
              "production": ("1024MB", "3072MB", "7MB", 2**30 * 80 // 100)}
POSTGRES_FIXED = {"listen_addresses": "*", "port": "5432", "unix_socket_directories": "/var/run/postgresql",
                  "hba_file": "/etc/postgresql/pg_hba.conf", "max_connections": "200",
                  "password_encryption": "scram-sha-256"}


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


def test_servers_run_the_generated_configuration_for_their_memory_limit():
    for stack, (shared_buffers, cache_size, work_mem, maxmemory) in CONFIGURED.items():
        run = data_run(stack)
        conf = run.get("ConfigMap", "postgres-config")["data"]["postgresql.conf"]
        values = dict(re.findall(r"^(\w+) = '(.*)'$", conf, re.MULTILINE))
        assert {key: values[key] for key in POSTGRES_FIXED} == POSTGRES_FIXED, stack
        assert (values["shared_buffers"], values["effective_cache_size"], values["work_mem"]) == (
            shared_buffers, cache_size, work_mem), stack
        redis_conf = run.get("ConfigMap", "redis-config")["data"]["redis.conf"]
        assert f"\nmaxmemory {maxmemory}\n" in redis_conf and "\nmaxmemory-policy volatile-lru\n" in redis_conf
        assert "\naclfile /run/codai/redis/users.acl\n" in redis_conf and "\nport 6379\n" in redis_conf
    run = data_run("production")
    pod = run.get("StatefulSet", "postgres")["spec"]["template"]
    assert pod["spec"]["containers"][0]["args"] == ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"]
    assert len(pod["metadata"]["annotations"]["checksum/config"]) == 10


@pytest.mark.parametrize("stack_name", ["staging", "production"])
def test_the_data_tier_fits_the_quota_beside_every_service_at_its_ceiling(stack_name):
    platform = load_settings(stack_name, stack_values(stack_name))
    data = footprint(PostgresSettings(), RedisSettings(), platform.settings.environment.sizing)
    run = data_run(stack_name)
    servers = [run.get("StatefulSet", name)["spec"] for name in ("postgres", "redis")]
    rendered_cpu = sum(spec["replicas"] * Cpu.parse(c["resources"]["requests"]["cpu"]).millis
                       for spec in servers for c in spec["template"]["spec"]["containers"])
    # servers and exporters: 250m + 20m + 100m + 20m in staging; in production 1 + 50m for PostgreSQL and
    # three Redis pods of 250m + 50m + 20m + 20m (a sentinel and its exporter beside each server)
    expected_cpu = {"staging": 390, "production": 2070}[stack_name]
    assert rendered_cpu == data.cpu_requests.millis == expected_cpu
    assert platform.data_tier == data  # the stack files leave the data tier at its defaults
    demand, quota = platform.demand(), platform.quota
    assert demand.cpu.millis <= quota.requests_cpu.millis and demand.memory.bytes <= quota.requests_memory.bytes
    assert demand.memory_limits.bytes <= quota.limits_memory.bytes and demand.pods <= quota.pods
    assert data.storage_requests.bytes <= quota.requests_storage.bytes
    assert data.persistent_volume_claims <= quota.persistent_volume_claims
