"""The CloudNativePG builders: every output is valid for the vendored CRDs, and says what we mean.

Offline and fast: the schemas come from vendor/crds/cloudnative-pg (v1.29.1), checked as
tests/test_schemas.py checks the rendered stacks (closed schemas: an unknown field is an error).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import jsonschema
import pytest

from components.data.cnpg_backup_specs import BarmanStore, scheduled_backup_spec, six_field_cron
from components.data.cnpg_specs import (
    ClusterPlan,
    ManagedRole,
    cluster_spec,
    database_spec,
    pooler_parameters,
    pooler_spec,
    recovery_cluster_spec,
)
from settings.connection_budget import ServiceConnections, budget
from tests.conftest import ROOT
from tools.crd_schemas import CrdSchemas, load_crd_schemas, validate_objects

CNPG = "postgresql.cnpg.io/v1"
STORE = BarmanStore("s3://codai-backups/postgres", "backup-s3", endpoint_url="https://s3.example.net",
                    region_key="AWS_REGION", retention="30d", wal_compression="zstd", data_compression="snappy")
RESOURCES = {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}}
PRODUCTION = ClusterPlan(
    name="postgres", instances=3, image="ghcr.io/cloudnative-pg/postgresql:16.4", storage_size="100Gi",
    resources=RESOURCES, max_connections=200,
    roles=(ManagedRole.for_service("codai", "codai-postgres-login", 40),
           ManagedRole("wallet", "wallet-postgres-login", 25)),
    labels={"app.kubernetes.io/name": "postgres", "codai.io/tier": "data"},
    parameters={"work_mem": "8MB"}, storage_class="fast-ssd", priority_class_name="codai-data", backup=STORE,
)
STAGING = ClusterPlan(name="postgres", instances=1, image="ghcr.io/cloudnative-pg/postgresql:16.4",
                      storage_size="10Gi", resources={"requests": {"cpu": "250m", "memory": "1Gi"},
                                                      "limits": {"cpu": "1", "memory": "1Gi"}}, max_connections=200)
SOURCE = dataclasses.replace(STORE, server_name="postgres")
PITR = dataclasses.replace(PRODUCTION, name="postgres-pitr", backup=None)
POOLER_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}


@pytest.fixture(scope="module")
def crds() -> CrdSchemas:
    return load_crd_schemas()


def wrap(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": CNPG, "kind": kind, "metadata": {"name": name, "namespace": "codai"}, "spec": spec}


def every_output() -> list[dict[str, Any]]:
    return [
        wrap("Cluster", "postgres", cluster_spec(PRODUCTION)),
        wrap("Cluster", "postgres", cluster_spec(STAGING)),
        wrap("Cluster", "postgres-pitr", recovery_cluster_spec(SOURCE, "2025-01-01 12:00:00.000000+00", PITR)),
        wrap("ScheduledBackup", "postgres-nightly", scheduled_backup_spec("postgres", "30 2 * * *")),
        wrap("Pooler", "postgres-pooler-rw", pooler_spec(
            "postgres", 3, parameters={"max_client_conn": "1000", "default_pool_size": "2"}, name="postgres-pooler-rw",
            labels={"app.kubernetes.io/name": "pgbouncer"}, priority_class_name="codai-data",
            resources=POOLER_RESOURCES)),
        wrap("Pooler", "postgres-pooler-rw", pooler_spec("postgres", 1, name="postgres-pooler-rw")),
        wrap("Database", "postgres-codai", database_spec("postgres", "codai", "codai")),
    ]


def test_every_output_validates_against_the_vendored_crds(crds):
    objects = every_output()
    for obj in objects:
        assert list(jsonschema.Draft7Validator(crds[(CNPG, obj["kind"])]).iter_errors(obj)) == []
    report = validate_objects(objects, ["1.30", "1.34"], crds)
    assert (report.errors, report.custom, report.builtin) == ([], 7, 0)


def test_the_schemas_bite_a_wrong_field_in_each_kind(crds):
    """The check above is not empty: the same objects with one mistake each are refused."""
    cluster, _, _, backup, pooler, _, database = copy.deepcopy(every_output())
    cluster["spec"]["managed"]["roles"][0]["connectionLimit"] = "40"
    backup["spec"]["method"] = "pgdump"
    pooler["spec"]["pgbouncer"]["parameters"]["max_client_conn"] = 1000
    del database["spec"]["owner"]
    errors = validate_objects([cluster, backup, pooler, database], ["1.30"], crds).errors
    assert errors == [
        "Cluster/postgres: spec.managed.roles.0.connectionLimit: '40' is not of type 'integer'",
        "ScheduledBackup/postgres-nightly: spec.method: 'pgdump' is not one of "
        "['barmanObjectStore', 'volumeSnapshot', 'plugin']",
        "Pooler/postgres-pooler-rw: spec.pgbouncer.parameters.max_client_conn: 1000 is not of type 'string'",
        "Database/postgres-codai: spec: 'owner' is a required property",
    ]


def test_the_database_crd_is_vendored_from_the_same_release():
    folder = ROOT / "vendor" / "crds" / "cloudnative-pg"
    assert sorted(p.name for p in folder.glob("*.yaml")) == [
        "postgresql.cnpg.io_backups.yaml", "postgresql.cnpg.io_clusters.yaml", "postgresql.cnpg.io_databases.yaml",
        "postgresql.cnpg.io_poolers.yaml", "postgresql.cnpg.io_scheduledbackups.yaml"]
    assert (folder / "SOURCE").read_text() == "github.com/cloudnative-pg/cloudnative-pg@v1.29.1 config/crd/bases/\n"
    assert "CLOUDNATIVE_PG_VERSION=v1.29.1\n" in (ROOT / "tools" / "cluster" / "versions.sh").read_text()
    assert "postgresql.cnpg.io_databases.yaml" in (ROOT / "tools" / "cluster" / "vendor-crds.sh").read_text()


def test_production_runs_three_instances_spread_over_zones_and_nodes():
    spec = cluster_spec(PRODUCTION)
    assert spec["instances"] == 3
    assert spec["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"cnpg.io/cluster": "postgres", "cnpg.io/podRole": "instance"}},
    }]
    assert spec["affinity"] == {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname",
                                "podAntiAffinityType": "preferred"}
    assert (spec["primaryUpdateStrategy"], spec["primaryUpdateMethod"]) == ("unsupervised", "switchover")
    assert spec["priorityClassName"] == "codai-data"
    assert spec["inheritedMetadata"] == {"labels": {"app.kubernetes.io/name": "postgres", "codai.io/tier": "data"}}
    assert spec["imageName"] == "ghcr.io/cloudnative-pg/postgresql:16.4"
    assert spec["storage"] == {"size": "100Gi", "storageClass": "fast-ssd"}
    assert spec["resources"] == RESOURCES
    assert spec["postgresql"] == {"parameters": {"max_connections": "200", "work_mem": "8MB"},
                                  # a role reaches only the database of its own name; nothing else gets in
                                  "pg_hba": ["host sameuser all all scram-sha-256", "host all all all reject"]}


def test_even_instance_counts_are_fine_and_staging_has_one():
    assert cluster_spec(dataclasses.replace(PRODUCTION, instances=2))["instances"] == 2
    spec = cluster_spec(STAGING)
    assert spec["instances"] == 1
    assert "priorityClassName" not in spec and "backup" not in spec and spec["storage"] == {"size": "10Gi"}


def test_each_service_role_has_its_own_connection_limit_and_no_other_right():
    assert cluster_spec(PRODUCTION)["managed"] == {"roles": [
        {"name": "codai", "ensure": "present", "login": True, "connectionLimit": 40,
         "passwordSecret": {"name": "codai-postgres-login"},
         "superuser": False, "createdb": False, "createrole": False, "replication": False, "bypassrls": False},
        {"name": "wallet", "ensure": "present", "login": True, "connectionLimit": 25,
         "passwordSecret": {"name": "wallet-postgres-login"},
         "superuser": False, "createdb": False, "createrole": False, "replication": False, "bypassrls": False},
    ]}
    # Named as the bootstrap names them: the service with '-' as '_'.
    assert ManagedRole.for_service("fabric-ai", "fabric-ai-login", 10).name == "fabric_ai"


def test_superuser_access_is_off_unless_asked_for():
    assert cluster_spec(PRODUCTION)["enableSuperuserAccess"] is False
    assert cluster_spec(STAGING)["enableSuperuserAccess"] is False
    assert cluster_spec(dataclasses.replace(STAGING, superuser_access=True))["enableSuperuserAccess"] is True


def test_the_backup_goes_to_exactly_the_configured_store_with_the_secret_keys():
    assert cluster_spec(PRODUCTION)["backup"] == {
        "retentionPolicy": "30d",
        "barmanObjectStore": {
            "destinationPath": "s3://codai-backups/postgres",
            "endpointURL": "https://s3.example.net",
            "s3Credentials": {
                "accessKeyId": {"name": "backup-s3", "key": "AWS_ACCESS_KEY_ID"},
                "secretAccessKey": {"name": "backup-s3", "key": "AWS_SECRET_ACCESS_KEY"},
                "region": {"name": "backup-s3", "key": "AWS_REGION"},
            },
            "wal": {"compression": "zstd"},
            "data": {"compression": "snappy"},
        },
    }
    # AWS S3 itself: no endpoint, no region key; gzip both ways and 30 days by default.
    plain = cluster_spec(dataclasses.replace(STAGING, backup=BarmanStore("s3://b-1/pg", "s3-keys")))["backup"]
    assert plain == {"retentionPolicy": "30d", "barmanObjectStore": {
        "destinationPath": "s3://b-1/pg",
        "s3Credentials": {"accessKeyId": {"name": "s3-keys", "key": "AWS_ACCESS_KEY_ID"},
                          "secretAccessKey": {"name": "s3-keys", "key": "AWS_SECRET_ACCESS_KEY"}},
        "wal": {"compression": "gzip"}, "data": {"compression": "gzip"}}}


def test_the_settings_cron_gains_a_seconds_field_in_front():
    assert six_field_cron("30 2 * * *") == "0 30 2 * * *"
    assert six_field_cron("*/15 8-18 * * 1-5") == "0 */15 8-18 * * 1-5"
    assert scheduled_backup_spec("postgres", "30 2 * * *") == {
        "cluster": {"name": "postgres"}, "schedule": "0 30 2 * * *", "backupOwnerReference": "self",
        "method": "barmanObjectStore", "immediate": True}


def test_the_pooler_fronts_the_primary_in_transaction_mode_with_the_budget_numbers():
    shared = [ServiceConnections("wallet", 2, 10, 8), ServiceConnections("bancai", 2, 10, 8)]
    parameters = pooler_parameters(budget(shared, max_connections=200, pooler_instances=3), shared)
    assert parameters == {"max_client_conn": "1000", "default_pool_size": "2", "max_db_connections": "2",
                          "reserve_pool_size": "0"}
    spec = pooler_spec("postgres", 3, parameters=parameters, name="postgres-pooler-rw",
                       labels={"app.kubernetes.io/name": "pgbouncer"}, priority_class_name="codai-data",
                       resources=POOLER_RESOURCES)
    spread = {"whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 1, "matchLabelKeys": ["pod-template-hash"],
              "labelSelector": {"matchLabels": {"cnpg.io/poolerName": "postgres-pooler-rw"}}}
    assert spec == {
        "cluster": {"name": "postgres"}, "instances": 3, "type": "rw",
        "pgbouncer": {"poolMode": "transaction", "parameters": parameters},
        "template": {"metadata": {"labels": {"app.kubernetes.io/name": "pgbouncer"}}, "spec": {
            "containers": [{"name": "pgbouncer", "resources": POOLER_RESOURCES}],
            "topologySpreadConstraints": [{**spread, "topologyKey": "topology.kubernetes.io/zone"},
                                          {**spread, "topologyKey": "kubernetes.io/hostname"}],
            "priorityClassName": "codai-data"}},
    }
    assert pooler_spec("postgres", 1, name="p")["template"]["spec"]["containers"] == []


def test_one_pooler_cannot_hold_two_pool_sizes():
    mixed = [ServiceConnections("codai", 4, 10, 15), ServiceConnections("wallet", 2, 10, 8)]
    message = ("one Pooler gives every database the same pool, and these services have pools [2, 4]: "
               "make one Pooler per pool size")
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        pooler_parameters(budget(mixed, max_connections=200, pooler_instances=3), mixed)
    assert str(refused.value) == message


def test_a_database_belongs_to_its_service_role_and_outlives_its_object():
    assert database_spec("postgres", "codai", "codai") == {
        "cluster": {"name": "postgres"}, "name": "codai", "owner": "codai", "ensure": "present",
        "databaseReclaimPolicy": "retain"}


def test_recovery_builds_a_new_cluster_from_the_source_folder_up_to_the_target_time():
    spec = recovery_cluster_spec(SOURCE, "2025-01-01 12:00:00.000000+00", PITR)
    assert spec["bootstrap"] == {"recovery": {"source": "postgres-origin",
                                              "recoveryTarget": {"targetTime": "2025-01-01 12:00:00.000000+00"}}}
    assert spec["externalClusters"] == [{"name": "postgres-origin", "barmanObjectStore": {
        "destinationPath": "s3://codai-backups/postgres", "endpointURL": "https://s3.example.net",
        "serverName": "postgres",
        "s3Credentials": {"accessKeyId": {"name": "backup-s3", "key": "AWS_ACCESS_KEY_ID"},
                          "secretAccessKey": {"name": "backup-s3", "key": "AWS_SECRET_ACCESS_KEY"},
                          "region": {"name": "backup-s3", "key": "AWS_REGION"}},
        "wal": {"compression": "zstd"}, "data": {"compression": "snappy"}}}]
    rest = {key: value for key, value in spec.items() if key not in ("bootstrap", "externalClusters")}
    assert rest == cluster_spec(PITR) and "backup" not in rest
    # Archiving to a folder of its own is fine.
    elsewhere = dataclasses.replace(PITR, backup=dataclasses.replace(STORE, destination_path="s3://codai-backups/pitr"))
    assert recovery_cluster_spec(SOURCE, "2025-01-01T12:00:00Z", elsewhere)["backup"]["barmanObjectStore"][
        "destinationPath"] == "s3://codai-backups/pitr"


@pytest.mark.parametrize(("build", "message"), [
    (lambda: dataclasses.replace(PRODUCTION, instances=0),
     "instances 0: a Cluster needs at least 1 PostgreSQL instance (production runs 3: a primary and two standbys)"),
    (lambda: BarmanStore("https://codai-backups/postgres", "backup-s3"),
     "backup destination 'https://codai-backups/postgres' is not of the form s3://<bucket>/<prefix>"),
    (lambda: BarmanStore("codai-backups/postgres", "backup-s3"),
     "backup destination 'codai-backups/postgres' is not of the form s3://<bucket>/<prefix>"),
    (lambda: BarmanStore("s3://codai-backups/pg", "backup-s3", endpoint_url="s3.example.net"),
     "backup endpoint 's3.example.net' must be an http:// or https:// URL"),
    (lambda: BarmanStore("s3://codai-backups/pg", "backup-s3", endpoint_url="ftp://s3.example.net"),
     "backup endpoint 'ftp://s3.example.net' must be an http:// or https:// URL"),
    (lambda: BarmanStore("s3://codai-backups/pg", "Backup_S3"),
     "credentials Secret 'Backup_S3' is not a DNS label (lowercase a-z, 0-9 and '-', at most 63 characters)"),
    (lambda: BarmanStore("s3://codai-backups/pg", "backup-s3", region_key="AWS REGION"),
     "region key 'AWS REGION' is not a valid Secret key (letters, digits, '-', '_', '.')"),
    (lambda: BarmanStore("s3://codai-backups/pg", "backup-s3", retention="30 days"),
     "retention '30 days' is not a number of days, weeks or months such as '30d', '4w' or '6m'"),
    (lambda: BarmanStore("s3://codai-backups/pg", "backup-s3", retention="0d"),
     "retention '0d' is not a number of days, weeks or months such as '30d', '4w' or '6m'"),
    (lambda: BarmanStore("s3://codai-backups/pg", "backup-s3", retention="1y"),
     "retention '1y' is not a number of days, weeks or months such as '30d', '4w' or '6m'"),
    (lambda: BarmanStore("s3://codai-backups/pg", "backup-s3", data_compression="zstd"),
     "data compression 'zstd' is not one of bzip2, gzip, snappy (base backups accept fewer codecs than WAL)"),
    (lambda: six_field_cron("0 30 2 * * *"),
     "schedule '0 30 2 * * *' has 6 fields: write the 5-field cron the settings use "
     "(minute hour day-of-month month day-of-week), such as '30 2 * * *'"),
    (lambda: scheduled_backup_spec("postgres", "@daily"),
     "schedule '@daily' has 1 fields: write the 5-field cron the settings use "
     "(minute hour day-of-month month day-of-week), such as '30 2 * * *'"),
    (lambda: dataclasses.replace(PRODUCTION, image="postgres:16.4-bookworm"),
     "image 'postgres:16.4-bookworm' has no barman-cloud: use a CloudNativePG operand image such as "
     "ghcr.io/cloudnative-pg/postgresql:16.4"),
    (lambda: dataclasses.replace(PRODUCTION, image="ghcr.io/cloudnative-pg/postgresql:latest"),
     "image 'ghcr.io/cloudnative-pg/postgresql:latest': 'latest' is not a pinned version; use a release tag such "
     "as '2024.12.1'"),
    (lambda: dataclasses.replace(PRODUCTION, resources={"limits": {"cpu": "4", "memory": "4Gi"}}),
     "cluster resources must have requests and limits, of cpu and memory only: {'limits': {'cpu': '4', "
     "'memory': '4Gi'}}"),
    (lambda: dataclasses.replace(PRODUCTION, parameters={"max_connections": "500"}),
     "parameters must not set max_connections: it is its own input"),
    (lambda: dataclasses.replace(PRODUCTION, labels={"cnpg.io/cluster": "other"}),
     "labels ['cnpg.io/cluster'] belong to the operator (cnpg.io/)"),
    (lambda: dataclasses.replace(PRODUCTION, roles=(ManagedRole("codai", "a", 200),)),
     "role codai: connection limit 200 must stay below max_connections 200"),
    (lambda: dataclasses.replace(PRODUCTION, roles=(ManagedRole("codai", "a", 5), ManagedRole("codai", "b", 5))),
     "roles must be given once each: ['codai', 'codai']"),
    (lambda: ManagedRole("codai", "codai-login", 0), "role codai: connection limit 0 must be at least 1"),
    (lambda: ManagedRole("fabric-ai", "fabric-ai-login", 10),
     "role 'fabric-ai': write it as PostgreSQL does, 'fabric_ai'"),
    (lambda: ManagedRole("streaming_replica", "s", 10), "role 'streaming_replica' belongs to the operator"),
    (lambda: ManagedRole("cnpg_pooler_pgbouncer", "s", 10), "role 'cnpg_pooler_pgbouncer' belongs to the operator"),
    (lambda: database_spec("postgres", "template1", "codai"), "database 'template1' is reserved by PostgreSQL"),
    (lambda: database_spec("Postgres", "codai", "codai"),
     "cluster 'Postgres' is not a DNS label (lowercase a-z, 0-9 and '-', at most 63 characters)"),
    (lambda: pooler_spec("postgres", 0, name="postgres-pooler-rw"), "pooler instances 0: at least 1"),
    (lambda: pooler_spec("postgres", 2, name="postgres"),
     "pooler 'postgres' must not have its cluster's name (CloudNativePG refuses it)"),
    (lambda: pooler_spec("postgres", 2, parameters={"pool_mode": "session", "listen_port": "6432"}, name="p"),
     "PgBouncer parameters ['listen_port', 'pool_mode'] are refused by CloudNativePG (reserved or unknown)"),
    (lambda: pooler_spec("postgres", 2, "statement", name="p"),
     "pool mode 'statement' is not 'session' or 'transaction'"),
    (lambda: recovery_cluster_spec(SOURCE, "2025-01-01 12:00:00", PITR),
     "target time '2025-01-01 12:00:00' must be a timestamp with its offset, such as '2025-01-01 12:00:00.000000+00'"),
    (lambda: recovery_cluster_spec(STORE, "2025-01-01 12:00:00+00", PITR),
     "the source store must name the Cluster recovered from (server_name)"),
    (lambda: recovery_cluster_spec(SOURCE, "2025-01-01 12:00:00+00", dataclasses.replace(PITR, backup=SOURCE)),
     "cluster postgres-pitr would archive into the folder it recovers from (s3://codai-backups/postgres, "
     "server postgres): give it another destination or server name"),
], ids=lambda value: value[:48] if isinstance(value, str) else None)
def test_refusals_say_what_is_wrong(build, message):
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        build()
    assert str(refused.value) == message  # the whole message, not only its start
