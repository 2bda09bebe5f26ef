"""Every rendered object is valid for the Kubernetes versions we support and for its CRD."""

from __future__ import annotations

import copy
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import ROOT, STACKS, stack_run
from tools.crd_schemas import CrdFolderMissingError, CrdSchemas, close_schema, load_crd_schemas, validate_objects
from tools.validate import StackReport, kubernetes_versions, made_elsewhere, main, validate_run


@pytest.fixture(scope="session")
def crds() -> CrdSchemas:
    return load_crd_schemas()


@pytest.fixture(scope="session", params=STACKS)
def report(request: pytest.FixtureRequest, crds: CrdSchemas) -> StackReport:
    """Each stack validated once per session, against the versions its own settings name."""
    return validate_run(stack_run(request.param), kubernetes_versions(request.param), crds,
                        made_elsewhere(request.param))


def test_every_object_of_every_stack_is_valid(report: StackReport, crds: CrdSchemas):
    assert report.schema_errors == []
    objects = stack_run(report.stack).kubernetes_objects()
    custom = [o for o in objects if (o["apiVersion"], o["kind"]) in crds]
    # Every object was checked, and each custom resource by its CRD (not skipped as unknown).
    assert (report.builtin, report.custom) == (len(objects) - len(custom), len(custom))
    assert Counter(o["kind"] for o in custom)["ServiceMonitor"] >= 29


def test_the_versions_are_the_oldest_and_newest_the_stack_supports(any_stack):
    versions = kubernetes_versions(any_stack.stack)
    psa = any_stack.get("Namespace", any_stack.outputs["namespace"])["metadata"]["labels"]
    # The oldest version is also the one Pod Security Admission is pinned to.
    assert psa["pod-security.kubernetes.io/enforce-version"] == f"v{versions[0]}"
    # Neither stack file narrows the supported range: the defaults, oldest first.
    assert versions == ["1.30", "1.34"]


def test_a_field_of_a_newer_kubernetes_fails_the_oldest_version_only(staging, crds):
    deployment = copy.deepcopy(staging.get("Deployment", "codai"))
    deployment["spec"]["template"]["spec"]["resources"] = {"limits": {"cpu": "1"}}  # pod-level, Kubernetes 1.32+
    errors = validate_objects([deployment], ["1.30", "1.34"], crds).errors
    assert len(errors) == 1 and errors[0].startswith("Deployment/codai (Kubernetes 1.30): spec.template.spec:")


def test_unknown_fields_are_errors_in_built_in_and_custom_kinds(staging, crds):
    deployment = copy.deepcopy(staging.get("Deployment", "codai"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    monitor = copy.deepcopy(staging.get("ServiceMonitor", "codai"))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    monitor["spec"]["endpoints"][0]["kind"] = "http"  # a field name that only the top level may have
    errors = validate_objects([deployment, monitor], ["1.30"], crds).errors
    assert [e.split(":")[0] for e in errors] == ["Deployment/codai (Kubernetes 1.30)", "ServiceMonitor/codai"]
    assert "imagePullPolicyy" in errors[0]
    assert "'intervall', 'kind' were unexpected" in errors[1]


def test_wrong_types_and_values_are_errors(staging, crds):
    hpa = copy.deepcopy(staging.get("HorizontalPodAutoscaler", "codai"))
    hpa["spec"]["minReplicas"] = "two"
    monitor = copy.deepcopy(staging.get("ServiceMonitor", "codai"))
    monitor["spec"]["endpoints"][0]["scheme"] = "gopher"
    errors = validate_objects([hpa, monitor], ["1.34"], crds).errors
    assert errors == [
        "HorizontalPodAutoscaler/codai (Kubernetes 1.34): spec.minReplicas: 'two' is not of type 'integer', 'null'",
        "ServiceMonitor/codai: spec.endpoints.0.scheme: 'gopher' is not one of ['http', 'https', 'HTTP', 'HTTPS']",
    ]


def test_a_custom_resource_without_a_crd_is_an_error(crds):
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "codai"}}
    errors = validate_objects([obj], ["1.30"], crds).errors
    assert errors and errors[0].startswith("Widget/w: no schema for example.com/v1 Widget in Kubernetes 1.30")


def test_the_crds_cover_the_kinds_the_platform_uses(crds):
    assert {kind for _, kind in crds} >= {"ServiceMonitor", "PodMonitor", "Probe", "PrometheusRule",
                                         "AlertmanagerConfig", "Certificate", "Issuer", "ClusterIssuer",
                                         "Cluster", "Pooler", "ScheduledBackup", "Backup"}
    # The AlertmanagerConfig CRD loaded with its bare `=` enum value read as the string "=".
    matcher = crds[("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig")]["properties"]["spec"]["properties"][
        "route"]["properties"]["matchers"]["items"]["properties"]["matchType"]
    assert "=" in matcher["enum"]


CNPG = "postgresql.cnpg.io/v1"
#: What a rendered CloudNativePG database must look like: a three-instance Cluster backed up to an
#: object store, its PgBouncer Pooler, and the nightly ScheduledBackup (six-field cron, seconds first).
CNPG_CLUSTER: dict[str, Any] = {
    "apiVersion": CNPG, "kind": "Cluster", "metadata": {"name": "codai-pg", "namespace": "codai"},
    "spec": {
        "instances": 3,
        "storage": {"size": "20Gi"},
        "bootstrap": {"initdb": {"database": "codai", "owner": "codai"}},
        "backup": {
            "retentionPolicy": "30d",
            "barmanObjectStore": {
                "destinationPath": "s3://codai-backups/postgres",
                "endpointURL": "https://s3.example.com",
                "s3Credentials": {
                    "accessKeyId": {"name": "codai-pg-backup", "key": "ACCESS_KEY_ID"},
                    "secretAccessKey": {"name": "codai-pg-backup", "key": "SECRET_ACCESS_KEY"},
                },
            },
        },
    },
}
CNPG_POOLER: dict[str, Any] = {
    "apiVersion": CNPG, "kind": "Pooler", "metadata": {"name": "codai-pg-rw", "namespace": "codai"},
    "spec": {
        "cluster": {"name": "codai-pg"},
        "instances": 2,
        "type": "rw",
        "pgbouncer": {"poolMode": "transaction",
                      "parameters": {"max_client_conn": "500", "default_pool_size": "20"}},
    },
}
CNPG_SCHEDULED_BACKUP: dict[str, Any] = {
    "apiVersion": CNPG, "kind": "ScheduledBackup", "metadata": {"name": "codai-pg-nightly", "namespace": "codai"},
    "spec": {"schedule": "0 0 2 * * *", "cluster": {"name": "codai-pg"}, "backupOwnerReference": "self"},
}


def test_cloudnative_pg_resources_validate_against_the_vendored_crds(crds):
    objects = [CNPG_CLUSTER, CNPG_POOLER, CNPG_SCHEDULED_BACKUP]
    for obj in objects:
        assert list(jsonschema.Draft7Validator(crds[(CNPG, obj["kind"])]).iter_errors(obj)) == []
    report = validate_objects(objects, ["1.30", "1.34"], crds)
    assert (report.errors, report.custom, report.builtin) == ([], 3, 0)


def test_cloudnative_pg_resources_with_wrong_types_or_unknown_fields_are_refused(crds):
    cluster = copy.deepcopy(CNPG_CLUSTER)
    cluster["spec"]["instances"] = "three"
    cluster["spec"]["backup"]["retentionPolicy"] = "30 days"
    cluster["spec"]["backup"]["barmanObjectStore"]["s3Credentials"]["accessKeyId"]["secret"] = "x"
    pooler = copy.deepcopy(CNPG_POOLER)
    pooler["spec"]["pgbouncer"]["poolMode"] = "statement"
    pooler["spec"]["replicas"] = 2  # the field is `instances`: the closed schema refuses it
    backup = copy.deepcopy(CNPG_SCHEDULED_BACKUP)
    backup["spec"]["backupOwnerReference"] = "me"
    del backup["spec"]["schedule"]
    errors = validate_objects([cluster, pooler, backup], ["1.30"], crds).errors
    assert errors == [
        "Cluster/codai-pg: spec.backup.barmanObjectStore.s3Credentials.accessKeyId: "
        "Additional properties are not allowed ('secret' was unexpected)",
        "Cluster/codai-pg: spec.backup.retentionPolicy: '30 days' does not match '^[1-9][0-9]*[dwm]$'",
        "Cluster/codai-pg: spec.instances: 'three' is not of type 'integer'",
        "Pooler/codai-pg-rw: spec: Additional properties are not allowed ('replicas' was unexpected)",
        "Pooler/codai-pg-rw: spec.pgbouncer.poolMode: 'statement' is not one of ['session', 'transaction']",
        "ScheduledBackup/codai-pg-nightly: spec: 'schedule' is a required property",
        "ScheduledBackup/codai-pg-nightly: spec.backupOwnerReference: 'me' is not one of ['none', 'self', 'cluster']",
    ]


def test_close_schema_forbids_unlisted_fields_only_where_fields_are_listed():
    schema = close_schema({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"type": {"type": "string"}, "items": {"type": "object"}}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {}}},
    }})
    assert schema["additionalProperties"] is False
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    # Fields that happen to be called `type` or `items` are fields, not schema keywords.
    assert spec["properties"]["type"] == {"type": "string"} and spec["properties"]["items"] == {"type": "object"}
    assert schema["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in schema["properties"]["free"]
    # Only the top level gains `metadata` (the API server checks it with ObjectMeta).
    assert "metadata" in schema["properties"] and "metadata" not in spec["properties"]


def test_a_missing_crd_folder_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(CrdFolderMissingError, match="vendor/crds"):
        load_crd_schemas(tmp_path / "crds")
    with pytest.raises(CrdFolderMissingError, match="no CustomResourceDefinition"):
        load_crd_schemas(tmp_path)
    assert main(["staging", "--crds", str(tmp_path / "crds")]) == 2
    assert "CRD folder" in capsys.readouterr().err


def test_unsupported_kubernetes_versions_are_refused(crds):
    with pytest.raises(ValueError, match=r"not 1\.12"):
        validate_objects([], ["1.12"], crds)


def test_nothing_in_the_repository_reads_beyond_it():
    """A clone stands alone: nothing tracked reads the folder beside the clone (the CRDs are vendored)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    sources = [ROOT / name for name in tracked
               if name.endswith((".py", ".sh", ".yml", "Makefile", "run")) and name != "tests/test_schemas.py"]
    beside = "shared"  # the folder next to the clone, which a user's clone does not have
    path = re.compile(rf"""\.\./{beside}|["']{beside}["'/]|{beside}/crds""")
    readers = [str(p.relative_to(ROOT)) for p in sources if p.exists() and path.search(p.read_text())]
    assert readers == []


def test_validate_command_reports_figures_per_stack(crds: Any, capsys: pytest.CaptureFixture[str]):
    assert main(["staging"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^staging: \d+ objects; \d+ built-in objects validated strictly against Kubernetes "
                     r"\d\.\d+ and \d\.\d+, \d+ custom resources against their CRDs: 0 schema error", out)
