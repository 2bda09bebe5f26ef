"""The CloudNativePG resources the data tier will render are accepted by a real API server.

tests/test_schemas.py checks the same literal Cluster, Pooler and ScheduledBackup against the
vendored schemas offline; here the API server of the local cluster, with the vendored CRDs
installed, judges them (a server-side dry run: nothing is created, and no operator runs here).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.test_schemas import CNPG_CLUSTER, CNPG_POOLER, CNPG_SCHEDULED_BACKUP
from tools.cluster.local_cluster import ClusterError, LocalCluster


def dry_run(cluster: LocalCluster, obj: dict[str, Any]) -> str:
    """``kubectl apply --dry-run=server --validate=strict``: unknown fields are errors, as in the offline check."""
    placed = copy.deepcopy(obj)
    placed["metadata"]["namespace"] = "default"  # the platform's namespace does not exist outside a deploy
    return cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=json.dumps(placed))


def test_the_crds_are_installed_and_established(cluster: LocalCluster):
    names = cluster.kubectl("get", "crd", "-o", "name").split()
    assert {name for name in names if name.endswith(".postgresql.cnpg.io")} == {
        f"customresourcedefinition.apiextensions.k8s.io/{plural}.postgresql.cnpg.io"
        for plural in ("clusters", "poolers", "scheduledbackups", "backups", "databases")}


@pytest.mark.parametrize("obj", [CNPG_CLUSTER, CNPG_POOLER, CNPG_SCHEDULED_BACKUP], ids=lambda obj: obj["kind"])
def test_the_api_server_accepts_the_resources(cluster: LocalCluster, obj: dict[str, Any]):
    kind, name = obj["kind"].lower(), obj["metadata"]["name"]
    assert dry_run(cluster, obj).strip() == f"{kind}.postgresql.cnpg.io/{name} created (server dry run)"


def test_the_api_server_refuses_a_wrong_type_and_an_unknown_field(cluster: LocalCluster):
    wrong_type = copy.deepcopy(CNPG_CLUSTER)
    wrong_type["spec"]["instances"] = "three"
    with pytest.raises(ClusterError, match=r"spec\.instances: Invalid value: \"string\": spec\.instances in body "
                                           r"must be of type integer"):
        dry_run(cluster, wrong_type)
    unknown = copy.deepcopy(CNPG_POOLER)
    unknown["spec"]["replicas"] = 2  # the field is `instances`
    with pytest.raises(ClusterError, match=r'unknown field "spec\.replicas"'):
        dry_run(cluster, unknown)
