"""PostgreSQL and Redis stack settings: defaults, overrides, and the error each bad value gets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from settings.data import (
    ContainerResources,
    PostgresSettings,
    RedisSettings,
    ServerSizing,
    footprint,
)
from settings.defaults import SizingProfile
from settings.quantities import Cpu, Memory
from tests.conftest import POSTGRES_BACKUP

EXTERNAL = {"host": "db.example.com", "adminSecret": {"name": "pg-admin"}, "egressCidrs": ["10.0.0.0/16"]}


def error(model: type[PostgresSettings | RedisSettings], value: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(value)
    return str(caught.value)


def test_defaults_run_in_the_cluster_with_pinned_images_and_daily_backups():
    postgres, redis = PostgresSettings(), RedisSettings()
    assert postgres.mode == redis.mode == "inCluster"
    # A CloudNativePG operand image: it carries barman-cloud, which archiving and recovery run.
    assert postgres.image == "ghcr.io/cloudnative-pg/postgresql:16.4" and redis.image == "redis:7.2.5-alpine"
    # Instances and PgBouncers follow the sizing profile unless the stack says; the operator in cnpg-system.
    assert (postgres.instances, postgres.pooler.instances, postgres.operator_namespace) == (None, None, "cnpg-system")
    assert (postgres.backup.enabled, postgres.backup.schedule, postgres.backup.retention, postgres.backup.keep) == (
        True, "30 2 * * *", "30d", 7)
    assert postgres.backup.target == "volume" and redis.eviction_policy == "volatile-lru"
    # The default target is a managed server's only: in the cluster the stack must name an object store.
    (problem,) = postgres.problems(SizingProfile.MINIMAL)
    assert problem[0] == "postgres.backup.target" and "objectStore" in problem[1]
    external = PostgresSettings.model_validate({"mode": "external", "external": EXTERNAL})
    assert external.backup.target == "volume" and external.problems(SizingProfile.MINIMAL) == []


def test_keys_are_camel_case_and_unknown_keys_are_refused():
    settings = PostgresSettings.model_validate({"storageSize": "50Gi", "connectionLimitPerService": 10,
                                                "backup": {"storageClass": "fast-ssd"}})
    assert settings.storage_size == Memory.parse("50Gi") and settings.backup.storage_class == "fast-ssd"
    assert "storage_sise" in error(PostgresSettings, {"storage_sise": "1Gi"})
    assert "Extra inputs are not permitted" in error(RedisSettings, {"maxmemory": "1Gi"})


def test_sizing_comes_from_the_profile_with_single_values_overridden():
    settings = PostgresSettings.model_validate({"resources": {"limits": {"memory": "8Gi"}}, "storageSize": "500Gi"})
    sizing = settings.sizing(SizingProfile.HIGH_AVAILABILITY)
    # the highAvailability row (1 CPU, 4Gi) with the limit's memory and the storage overridden
    assert sizing.server == ContainerResources(Cpu.parse("1"), Memory.parse("4Gi"), Cpu.parse("4"),
                                               Memory.parse("8Gi"))
    assert sizing.storage == Memory.parse("500Gi") and sizing.backup_storage == Memory.parse("200Gi")
    # No exporter of ours: CloudNativePG's instance manager exports the metrics, inside the server's container.
    # Three instances, and two PgBouncers per Pooler.
    assert (sizing.exporter, sizing.instances, sizing.pooler_instances) == (None, 3, 2)
    assert sizing.pooler == ContainerResources(Cpu.parse("100m"), Memory.parse("64Mi"), Cpu.parse("500m"),
                                               Memory.parse("128Mi"))
    assert PostgresSettings().sizing(SizingProfile.MINIMAL) == ServerSizing(
        server=ContainerResources(Cpu.parse("250m"), Memory.parse("1Gi"), Cpu.parse("1"), Memory.parse("1Gi")),
        storage=Memory.parse("10Gi"), backup_storage=Memory.parse("20Gi"),
        pooler=ContainerResources(Cpu.parse("20m"), Memory.parse("32Mi"), Cpu.parse("200m"), Memory.parse("64Mi")),
        pooler_instances=1)
    overridden = PostgresSettings.model_validate({"instances": 5, "pooler": {
        "instances": 3, "resources": {"limits": {"memory": "256Mi"}}}}).sizing(SizingProfile.MINIMAL)
    assert (overridden.instances, overridden.pooler_instances) == (5, 3)
    assert overridden.pooler == ContainerResources(Cpu.parse("20m"), Memory.parse("32Mi"), Cpu.parse("200m"),
                                                   Memory.parse("256Mi"))
    assert RedisSettings().sizing(SizingProfile.MINIMAL) == ServerSizing(
        server=ContainerResources(Cpu.parse("100m"), Memory.parse("256Mi"), Cpu.parse("500m"), Memory.parse("256Mi")),
        exporter=ContainerResources(Cpu.parse("20m"), Memory.parse("32Mi"), Cpu.parse("200m"), Memory.parse("64Mi")),
        storage=Memory.parse("2Gi"))
    assert RedisSettings().sizing(SizingProfile.HIGH_AVAILABILITY) == ServerSizing(
        server=ContainerResources(Cpu.parse("250m"), Memory.parse("1Gi"), Cpu.parse("1"), Memory.parse("1Gi")),
        exporter=ContainerResources(Cpu.parse("50m"), Memory.parse("64Mi"), Cpu.parse("250m"), Memory.parse("128Mi")),
        storage=Memory.parse("10Gi"), instances=3)
    assert RedisSettings(instances=1).sizing(SizingProfile.HIGH_AVAILABILITY).instances == 1


def test_a_request_above_its_limit_is_reported_at_the_key_to_change():
    settings = RedisSettings.model_validate({"resources": {"requests": {"memory": "2Gi"}},
                                             "exporterResources": {"requests": {"cpu": "2"}}})
    assert settings.problems(SizingProfile.MINIMAL) == [
        ("redis.resources.requests.memory", "memory request 2Gi is above its limit 256Mi"),
        ("redis.exporterResources.requests.cpu", "cpu request 2 is above its limit 200m"),
    ]
    assert PostgresSettings.model_validate(POSTGRES_BACKUP).problems(SizingProfile.HIGH_AVAILABILITY) == []
    postgres = PostgresSettings.model_validate({**POSTGRES_BACKUP, "resources": {"requests": {"cpu": "2"}}})
    assert postgres.problems(SizingProfile.MINIMAL) == [
        ("postgres.resources.requests.cpu", "cpu request 2 is above its limit 1")]


def test_a_pgbouncer_request_above_its_limit_is_reported_at_the_key_to_change():
    settings = PostgresSettings.model_validate({**POSTGRES_BACKUP, "pooler": {"resources": {
        "requests": {"cpu": "2"}}}})
    assert settings.problems(SizingProfile.MINIMAL) == [
        ("postgres.pooler.resources.requests.cpu", "cpu request 2 is above its limit 200m")]


@pytest.mark.parametrize("model", [PostgresSettings, RedisSettings])
def test_the_mode_and_the_external_server_go_together(model):
    assert "`external` (host, adminSecret, egressCidrs) is not set" in error(model, {"mode": "external"})
    assert "`external` is set but mode is inCluster" in error(model, {"external": EXTERNAL})
    settings = model.model_validate({"mode": "external", "external": EXTERNAL})
    assert settings.external is not None and not settings.in_cluster
    assert str(settings.external.egress_cidrs[0]) == "10.0.0.0/16"


@pytest.mark.parametrize(("external", "message"), [
    ({**EXTERNAL, "egressCidrs": []}, "at least 1 item"),
    ({**EXTERNAL, "egressCidrs": ["10.0.0.300/16"]}, "valid IPv4 or IPv6 network"),
    ({**EXTERNAL, "host": "DB_Server"}, "neither a lowercase DNS name nor an IP address"),
    ({**EXTERNAL, "tlsMode": "prefer"}, "'disable', 'require', 'verify-ca' or 'verify-full'"),
    ({k: v for k, v in EXTERNAL.items() if k != "adminSecret"}, "adminSecret"),
])
def test_an_external_server_needs_where_it_is_and_who_administers_it(external, message):
    assert message in error(PostgresSettings, {"mode": "external", "external": external})


def test_an_external_server_may_be_an_ip_address_with_its_own_port():
    settings = PostgresSettings.model_validate({"mode": "external", "external": {
        **EXTERNAL, "host": "10.0.3.4", "port": 6432, "tlsMode": "require"}})
    assert settings.external is not None and (settings.external.host, settings.external.port) == ("10.0.3.4", 6432)


@pytest.mark.parametrize(("image", "message"), [
    ("postgres", "has no version tag"),
    ("postgres:latest", "'latest' is not a pinned version"),
    ("registry.example.com:5000/postgres", "has no version tag"),
    ("postgres@sha256:abc", "is not an image digest"),
    ("@sha256:" + "a" * 64, "a digest reference is"),
])
def test_images_are_pinned(image, message):
    assert message in error(PostgresSettings, {"image": image})


def test_a_digest_or_a_registry_with_a_port_is_a_pinned_image():
    digest = "ghcr.io/cloudnative-pg/postgresql@sha256:" + "a" * 64
    assert PostgresSettings.model_validate({"image": digest}).image == digest
    # Docker Hub's postgres has no barman-cloud: refused in the cluster, fine for a managed server's jobs.
    hub = "postgres@sha256:" + "a" * 64
    assert "has no barman-cloud" in error(PostgresSettings, {"image": hub})
    assert PostgresSettings.model_validate({"image": hub, "mode": "external", "external": EXTERNAL}).image == hub
    assert RedisSettings.model_validate({"image": "registry.example.com:5000/redis:7.2.5"}).image.endswith(":7.2.5")


def test_backup_targets_and_schedules():
    store = {"url": "s3://codai-backups/prod", "credentialsSecret": "backup-s3"}
    settings = PostgresSettings.model_validate({"backup": {"target": "objectStore", "objectStore": store}})
    assert settings.backup.object_store is not None and settings.backup.object_store.bucket_path == "codai-backups/prod"
    assert "`objectStore` (url, credentialsSecret) is not set" in error(
        PostgresSettings, {"backup": {"target": "objectStore"}})
    assert "set target: objectStore or remove it" in error(PostgresSettings, {"backup": {"objectStore": store}})
    assert "is not of the form s3://" in error(PostgresSettings, {"backup": {
        "target": "objectStore", "objectStore": {**store, "url": "https://bucket"}}})
    assert "must be an https:// URL" in error(PostgresSettings, {"backup": {
        "target": "objectStore", "objectStore": {**store, "endpoint": "http://minio:9000"}}})
    assert "five-field cron schedule" in error(PostgresSettings, {"backup": {"schedule": "daily"}})
    assert "greater than or equal to 1" in error(PostgresSettings, {"backup": {"keep": 0}})
    assert PostgresSettings.model_validate({"backup": {"schedule": "*/30 1-5 * * 1,3"}}).backup.schedule


def test_parameters_cannot_take_over_what_the_program_sets():
    assert "['listen_addresses', 'port'] are set by the program" in error(
        PostgresSettings, {"parameters": {"port": "5433", "listen_addresses": "*", "work_mem": "8MB"}})
    assert "are not postgresql.conf parameter names" in error(PostgresSettings, {"parameters": {"Work-Mem": "8MB"}})
    assert PostgresSettings.model_validate({"parameters": {"auto_explain.log_min_duration": "5s"}}).parameters


def test_the_per_service_connection_limit_stays_below_the_server_limit():
    assert "must stay below maxConnections 100" in error(
        PostgresSettings, {"maxConnections": 100, "connectionLimitPerService": 100})


def test_the_footprint_counts_servers_poolers_exporters_and_volumes_in_the_cluster():
    profile = SizingProfile.HIGH_AVAILABILITY
    postgres = PostgresSettings.model_validate(POSTGRES_BACKUP)
    both = footprint(postgres, RedisSettings(), profile, poolers=3)
    # PostgreSQL: 3 instances of 1 / 4Gi (limits 4Gi) and 3 Poolers x 2 PgBouncers of 100m / 64Mi (limits 128Mi);
    # three Redis pods, each 250m + 50m + 2 x 20m (server, exporter, sentinel, sentinel exporter),
    # 1Gi + 64Mi + 2 x 32Mi (limits 1Gi + 128Mi + 2 x 64Mi)
    assert both.cpu_requests == Cpu.parse(f"{3 * 1000 + 3 * 2 * 100 + 3 * (250 + 50 + 2 * 20)}m") == Cpu.parse("4620m")
    assert (both.memory_requests, both.memory_limits) == (
        Memory.parse(f"{3 * 4096 + 6 * 64 + 3 * (1024 + 64 + 2 * 32)}Mi"),
        Memory.parse(f"{3 * 4096 + 6 * 128 + 3 * (1024 + 128 + 2 * 64)}Mi")) == (
        Memory.parse("16128Mi"), Memory.parse("16896Mi"))
    # a volume per instance and per Redis server; none for backups: they go to the object store
    assert (both.pods, both.persistent_volume_claims) == (3 + 6 + 3, 3 + 3)
    assert both.storage_requests == Memory.parse("330Gi")  # 3 x 100Gi + 3 x 10Gi
    small = footprint(postgres, RedisSettings(), SizingProfile.MINIMAL, poolers=3)
    # 250m + 3 x 20m + 100m + 20m; 1Gi + 3 x 32Mi + 256Mi + 32Mi (limits 1Gi + 3 x 64Mi + 256Mi + 64Mi); 10Gi + 2Gi
    assert (small.cpu_requests, small.memory_requests, small.memory_limits, small.storage_requests) == (
        Cpu.parse("430m"), Memory.parse("1408Mi"), Memory.parse("1536Mi"), Memory.parse("12Gi"))
    assert (small.pods, small.persistent_volume_claims) == (1 + 3 + 1, 2)
    # The stack's counts: 2 instances and 3 PgBouncers per Pooler; no Pooler without a PostgreSQL client.
    scaled = PostgresSettings.model_validate({**POSTGRES_BACKUP, "instances": 2, "pooler": {"instances": 3}})
    assert footprint(scaled, RedisSettings(), profile, poolers=3).pods == 2 + 3 * 3 + 3
    assert footprint(scaled, RedisSettings(), profile, poolers=0).pods == 2 + 3
    external = PostgresSettings.model_validate({"mode": "external", "external": EXTERNAL})
    only_redis = footprint(external, RedisSettings(), profile, poolers=3)
    # A managed server's dumps go to a backup volume of the namespace (its default target), and it runs no PgBouncer.
    assert (only_redis.pods, only_redis.persistent_volume_claims) == (3, 4)
    assert only_redis.storage_requests == Memory.parse("230Gi")  # 3 x 10Gi of Redis data, 200Gi of dumps


def test_secrets_made_outside_the_program_are_listed_for_the_lint():
    assert PostgresSettings().referenced_secrets() == RedisSettings().referenced_secrets() == set()
    store = {"url": "s3://codai-backups/prod", "credentialsSecret": "backup-s3"}
    settings = PostgresSettings.model_validate({"mode": "external", "external": EXTERNAL,
                                                "backup": {"target": "objectStore", "objectStore": store}})
    assert settings.referenced_secrets() == {"pg-admin", "backup-s3"}
