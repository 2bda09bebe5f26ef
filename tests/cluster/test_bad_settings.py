"""A stack file with a bad value stops before anything reaches the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.conftest import deploy, objects, stack_file_with
from tools.cluster.local_cluster import LocalCluster

pytestmark = pytest.mark.realtool


def test_a_bad_stack_file_creates_nothing(cluster: LocalCluster, tmp_path: Path):
    bad = stack_file_with("staging", tmp_path, "bad", {
        "environment": {"namespace": "codai-bad", "release": "2024.12.2"},
        "tiers": {"core": {"replicas": {"min": 0}}},
    })
    outcome = deploy("up", "bad", bad)
    assert outcome.returncode == 1
    # One clear error naming the stack file and the key.
    assert "Pulumi.bad.yaml" in outcome.output and "tiers.core.replicas.min" in outcome.output, outcome.output[-2000:]
    namespaces = {o["metadata"]["name"] for o in objects(cluster, "namespaces", "")}
    assert "codai-bad" not in namespaces
    cluster_scoped = [o["metadata"]["name"] for o in objects(cluster, "priorityclasses,clusterroles", "")
                      if o["metadata"]["name"].startswith("codai-bad")]
    assert cluster_scoped == []
