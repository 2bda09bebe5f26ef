"""A replicated Redis as the program deploys it (production's default): three servers, a sentinel beside
each, and clients that ask the sentinels where the master is.

The files themselves are proven on real servers in test_redis_sentinel.py; here, that the pods get
exactly those files, that the network lets replication and discovery through and nothing more, and
that a drain may take one server at a time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from pydantic import ValidationError

from components.data import acl, sentinel_files
from components.data.sentinel_files import Address, SentinelGroup
from settings.data import RedisSettings
from tests.test_data_components import REDIS_CLIENTS, data_run, mock_password, secret_data

NS = "codai"
HOSTS = [f"redis-{i}.redis-headless.{NS}.svc" for i in range(3)]


def passwords() -> dict[str, str]:
    users = {service: f"redis-client-{service}-password" for service in REDIS_CLIENTS}
    users |= {user: f"redis-{user}-password" for user in ("exporter", "healthcheck", "replication", "sentinel")}
    return {user: mock_password(resource) for user, resource in users.items()}


def pod(run: Any) -> dict[str, Any]:
    spec: dict[str, Any] = run.get("StatefulSet", "redis")["spec"]
    return spec


def test_production_runs_three_servers_each_with_a_sentinel_and_both_exporters():
    spec = pod(data_run("production"))
    assert spec["replicas"] == 3
    containers = {c["name"]: c for c in spec["template"]["spec"]["containers"]}
    assert list(containers) == ["redis", "exporter", "sentinel", "sentinel-exporter"]
    assert containers["sentinel-exporter"]["env"][0] == {"name": "REDIS_ADDR", "value": "redis://localhost:26379"}
    # Spread over nodes and zones where the cluster has them; never refused where it has not.
    spread = spec["template"]["spec"]["topologySpreadConstraints"]
    assert [(c["topologyKey"], c["whenUnsatisfiable"]) for c in spread] == [
        ("kubernetes.io/hostname", "ScheduleAnyway"), ("topology.kubernetes.io/zone", "ScheduleAnyway")]


def test_each_pod_gets_exactly_the_files_proven_on_real_servers():
    files = secret_data(data_run("production"), "redis-replication")
    group = SentinelGroup("redis", tuple(Address(h, 6379) for h in HOSTS), tuple(Address(h, 26379) for h in HOSTS),
                          quorum=2)
    secrets = passwords()
    for index, host in enumerate(HOSTS):
        assert files[f"redis-{index}.conf"] == sentinel_files.replication_conf(group, index, secrets,
                                                                               announce_host=host)
        assert files[f"redis-{index}.sentinel.conf"] == sentinel_files.sentinel_conf(
            group, index, secrets, REDIS_CLIENTS, data_dir="/tmp", observers=[sentinel_files.exporter_user()])
    assert "replicaof redis-0.redis-headless.codai.svc 6379\n" in files["redis-2.conf"]
    assert "sentinel monitor redis redis-0.redis-headless.codai.svc 6379 2\n" in files["redis-1.sentinel.conf"]
    # The server starts from redis.conf followed by its own lines; both copies are writable for Sentinel.
    command = pod(data_run("production"))["template"]["spec"]["containers"][0]["command"][-1]
    assert command == ('cat /etc/redis/redis.conf "/run/codai/replication/$(hostname).conf" > /tmp/redis.conf '
                       "&& exec redis-server /tmp/redis.conf")


def test_the_servers_know_the_replication_and_sentinel_users():
    acl_file = secret_data(data_run("production"), "redis-users")["users.acl"]
    secrets = passwords()
    digest = {user: hashlib.sha256(secrets[user].encode()).hexdigest() for user in ("replication", "sentinel")}
    assert f"user replication reset on #{digest['replication']} -@all +psync +replconf +ping\n" in acl_file
    assert f"user sentinel reset on #{digest['sentinel']} &__sentinel__:hello -@all " in acl_file
    assert "user default reset -@all\n" in acl_file


def test_a_client_is_handed_the_sentinels_and_never_a_server_address():
    run = data_run("production")
    for service in REDIS_CLIENTS:
        data = secret_data(run, f"{service}-redis")
        assert data == {
            "REDIS_SENTINELS": ",".join(f"{host}:26379" for host in HOSTS),
            "REDIS_MASTER_NAME": "redis",
            "REDIS_USERNAME": service,
            "REDIS_PASSWORD": passwords()[service],
            "REDIS_TLS": "false",
            "REDIS_KEY_PREFIX": acl.key_prefix(service),
        }


def test_a_drain_takes_one_server_at_a_time_and_a_lone_server_waits_where_protected():
    replicated = data_run("production").get("PodDisruptionBudget", "redis")["spec"]
    assert replicated["maxUnavailable"] == 1
    lone = data_run("production", '{"redis": {"instances": 1}}').get("PodDisruptionBudget", "redis")["spec"]
    assert lone["maxUnavailable"] == 0  # production is protected: a single server waits for a planned restart


def rules(policy: dict[str, Any], direction: str) -> list[tuple[str, list[int]]]:
    """(the peers, canonical JSON; the ports) of each rule."""
    found = []
    for rule in policy["spec"].get(direction, []):
        peers = rule.get("from" if direction == "ingress" else "to", [])
        found.append((json.dumps(peers, sort_keys=True), sorted(p["port"] for p in rule["ports"])))
    return found


SERVERS = json.dumps([{"podSelector": {"matchLabels": {
    "app.kubernetes.io/component": "cache", "app.kubernetes.io/instance": "redis",
    "app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "codai"}}}], sort_keys=True)
CLIENTS = json.dumps([{"podSelector": {"matchExpressions": [
    {"key": "app.kubernetes.io/name", "operator": "In", "values": REDIS_CLIENTS}]}}], sort_keys=True)
PROMETHEUS = json.dumps([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                          "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}], sort_keys=True)


def test_servers_reach_each_other_for_replication_and_clients_reach_the_sentinels():
    policy = data_run("production").get("NetworkPolicy", "redis")
    assert sorted(rules(policy, "ingress")) == sorted([
        (CLIENTS, [6379, 26379]),  # the declared clients: the servers and the sentinels
        (PROMETHEUS, [9121]), (PROMETHEUS, [9355]),  # both exporters, from Prometheus only
        (SERVERS, [6379, 26379]),  # replication, and the sentinels watching and finding each other
    ])
    assert rules(policy, "egress") == [(SERVERS, [6379, 26379])]  # and nowhere else
    # What each client's own NetworkPolicy is handed: the same two ports, on the servers' pods only.
    for service, binding in data_run("production").outputs["bindings"]["redis"].items():
        (egress,) = binding["egress"]
        server_labels = json.loads(SERVERS)[0]["podSelector"]["matchLabels"]
        assert egress["to"] == [{"pod_selector": {"match_labels": server_labels}}], service
        assert [p["port"] for p in egress["ports"]] == [6379, 26379], service


def test_the_sentinels_metrics_are_scraped_from_their_own_service():
    run = data_run("production")
    service = run.get("Service", "redis-sentinel-metrics")["spec"]
    assert service["ports"] == [{"name": "metrics", "port": 9355, "targetPort": "sentinel-metric", "protocol": "TCP"}]
    monitor = run.get("ServiceMonitor", "redis-sentinel-metrics")["spec"]
    assert monitor["selector"]["matchLabels"]["app.kubernetes.io/component"] == "sentinel-metrics"


def test_staging_keeps_one_server_without_sentinels():
    run = data_run("staging")
    spec = pod(run)
    assert spec["replicas"] == 1
    assert [c["name"] for c in spec["template"]["spec"]["containers"]] == ["redis", "exporter"]
    assert not [o for o in run.kubernetes_objects() if o["metadata"]["name"] in ("redis-replication",
                                                                                 "redis-sentinel-metrics")]
    assert secret_data(run, "wallet-redis")["REDIS_URL"].endswith("@redis.codai-staging.svc:6379/0")


def test_an_instance_count_without_a_majority_or_for_a_managed_server_is_refused():
    with pytest.raises(ValidationError, match="2 instances: use 1, or an odd number from 3"):
        RedisSettings(instances=2)
    external = {"host": "cache.example.com", "adminSecret": {"name": "redis-admin"}, "egressCidrs": ["10.0.0.0/8"]}
    with pytest.raises(ValidationError, match="instances is set but mode is external"):
        RedisSettings.model_validate({"mode": "external", "external": external, "instances": 3})
