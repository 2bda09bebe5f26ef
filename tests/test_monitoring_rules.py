"""Alert rules: what they say, that Prometheus accepts them, and that they fire exactly when they should.

``promtool test rules`` runs every scenario against the rendered rule groups (written to a
temporary folder, never committed): a synthetic healthy platform, then one fault at a time.
Each scenario states every alert that must fire, so an alert firing where none is expected
fails the test as surely as a missing one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from components.labels import DATA_TIER
from components.monitoring.rules import AlertingRule, AlertName, RuleGroup, rule_file, rule_groups
from components.monitoring.signals import RecordingRule, tier_scope
from components.platform import observability_args
from services.tiers import Severity, Tier
from settings.loader import StackPlan, load_settings
from tests.conftest import STACKS, require_tool, run_with
from tests.monitoring_fixtures import (
    POSTGRES_PODS,
    POSTGRES_UP,
    REPLICATED,
    ROLLOUTS,
    STACK,
    platform_with,
    watched,
)
from tools.alertmanager_config import dump_yaml
from tools.offline import stack_values

GI = 2**30
HOUR = 3600


@pytest.fixture(scope="module")
def rollouts_groups(rollouts_plan: StackPlan) -> dict[str, RuleGroup]:
    """conftest's, with production's replicated data tier stated (``REPLICATED``): PostgreSQL's standbys too."""
    return rule_groups(watched(rollouts_plan))


def every_rule(groups: dict[str, RuleGroup]) -> list[RecordingRule | AlertingRule]:
    return [rule for group in groups.values() for rule in group["rules"]]


def alerting(group: RuleGroup) -> list[AlertingRule]:
    return [rule for rule in group["rules"] if "alert" in rule]  # type: ignore[misc]


def every_alert(groups: dict[str, RuleGroup]) -> list[AlertingRule]:
    return [rule for group in groups.values() for rule in alerting(group)]


# --- what the rules say ------------------------------------------------------------------------


def test_one_group_per_tier_and_one_for_the_data_tier(rollouts_groups):
    assert sorted(rollouts_groups) == sorted([*(t.value for t in Tier), DATA_TIER])
    assert len({g["name"] for g in rollouts_groups.values()}) == len(rollouts_groups)


#: The rules of a catalog tier, in order, with the severity ServiceDown has in that tier.
def _tier_rules(down: str) -> list[tuple[str, str]]:
    return [("ServiceDown", down), ("ErrorRatioHigh", "critical"), ("ErrorRatioHigh", "warning"),
            ("LatencyHigh", "warning"), ("CpuSaturation", "critical"), ("CpuSaturation", "warning"),
            ("MemorySaturation", "critical"), ("MemorySaturation", "warning"), ("PodCrashLooping", "critical"),
            ("CertificateExpiring", "warning"), ("RolloutInProgress", "info"), ("RolloutStuck", "info"),
            ("ReplicasMismatch", "info")]


#: The recorded signals each group computes first (components/monitoring/signals.py), in order.
TIER_RECORDS = ["codai:up:max", "codai:http_requests:rate5m", "codai:http_requests_error_ratio:rate5m",
                "codai:http_request_duration_seconds:p50_5m", "codai:http_request_duration_seconds:p95_5m",
                "codai:http_request_duration_seconds:p99_5m", "codai:container_cpu_limit_ratio:rate5m",
                "codai:container_memory_limit_ratio:max"]
RECORDS_PER_GROUP = {
    "core": TIER_RECORDS, "business": TIER_RECORDS, "support": TIER_RECORDS,
    DATA_TIER: [f"codai:{POSTGRES_UP}:max", "codai:redis_up:max", "codai:container_cpu_limit_ratio:rate5m",
                "codai:container_memory_limit_ratio:max"],
}

RULES_PER_GROUP = {
    "core": _tier_rules("critical"),
    "business": _tier_rules("warning"),
    "support": _tier_rules("info"),
    DATA_TIER: [("PostgresDown", "critical"), ("RedisDown", "critical"), ("RedisSentinelNoQuorum", "critical"),
                ("RedisReplicaUnhealthy", "warning"), ("PostgresReplicationLagHigh", "warning"),
                ("PostgresWalArchivingFailing", "critical"), ("PostgresBackupTooOld", "warning"),
                ("PostgresPoolSaturated", "warning"), ("DiskSaturation", "critical"),
                ("CpuSaturation", "critical"), ("CpuSaturation", "warning"), ("MemorySaturation", "critical"),
                ("MemorySaturation", "warning"), ("PodCrashLooping", "critical")],
}


def alerts_and_records(groups: dict[str, RuleGroup]) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[str]]]:
    """Each group's alerts (name, severity) and its recorded series, both in order."""
    return ({key: [(r["alert"], r["labels"]["severity"]) for r in alerting(group)] for key, group in groups.items()},
            {key: [r["record"] for r in group["rules"] if "record" in r] for key, group in groups.items()})


def test_each_group_records_its_signals_then_has_its_alerts_at_their_severities(rollouts_groups):
    assert alerts_and_records(rollouts_groups) == (RULES_PER_GROUP, RECORDS_PER_GROUP)
    for group in rollouts_groups.values():
        # recording rules first: Prometheus evaluates a group in order, so the alerts read this evaluation's values
        kinds = ["record" if "record" in r else "alert" for r in group["rules"]]
        assert kinds == sorted(kinds, reverse=True)
        assert all(set(r) == {"record", "expr"} for r in group["rules"] if "record" in r)
    counts = {s: sum(r["labels"]["severity"] == s.value for r in every_alert(rollouts_groups)) for s in Severity}
    assert counts == {Severity.CRITICAL: 21, Severity.WARNING: 22, Severity.INFO: 10}


def test_every_alert_carries_routing_labels_and_annotations(rollouts_groups, rollouts_plan, rollouts_namespace):
    monitoring = rollouts_plan.settings.monitoring
    for key, group in rollouts_groups.items():
        for rule in alerting(group):
            severity = rule["labels"]["severity"]
            assert rule["labels"] == {"severity": severity, "tier": key, "namespace": rollouts_namespace}
            assert severity in set(Severity)
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
            assert rule["annotations"]["runbook_url"] == monitoring.runbook_url(rule["alert"])
            assert rule["annotations"]["runbook_url"].endswith(f"/docs/runbooks/{rule['alert']}.md")
    # service is computed by every expression (label_replace) or by the recorded signal it reads, never left
    # to chance
    records = {r["record"]: r["expr"] for r in every_rule(rollouts_groups) if "record" in r}
    for rule in every_rule(rollouts_groups):
        read = re.findall(r"codai:[a-z0-9_:]+", rule["expr"])
        assert '"service"' in rule["expr"] or (read and all('"service"' in records[name] for name in read)), rule


def test_every_selector_is_scoped_to_the_platform_namespace(rollouts_groups, rollouts_namespace):
    selectors = [s for rule in every_rule(rollouts_groups) for s in re.findall(r"[a-z_]+\{([^}]*)\}", rule["expr"])]
    assert len(selectors) > 100
    unscoped = [s for s in selectors if f'namespace="{rollouts_namespace}"' not in s]
    assert unscoped == []


def test_service_down_severity_follows_the_tier(rollouts_groups):
    severities = {}
    for tier in Tier:
        (rule,) = [r for r in alerting(rollouts_groups[tier.value]) if r["alert"] == AlertName.SERVICE_DOWN]
        severities[tier] = rule["labels"]["severity"]
    assert severities == {Tier.CORE: "critical", Tier.BUSINESS: "warning", Tier.SUPPORT: "info"}


def test_every_service_is_watched_by_exactly_its_tier(rollouts_groups, rollouts_plan):
    for service in rollouts_plan.services:
        watching = [key for key in rollouts_groups
                    if any(f'job="{service.name}"' in r["expr"] for r in rollouts_groups[key]["rules"])]
        assert watching == [service.tier.value], service.name


#: Every threshold and `for` of the alert settings, each set to a value no other one has (several share
#: a default: cpu and memory warnings are both 0.8, five `for`s are 5m or 15m), so a rule reading the
#: wrong setting shows.
DISTINCT_ALERTS = {
    "errorRatioCritical": 0.11, "errorRatioWarning": 0.031, "errorRatioMinRequestRate": 0.17,
    "cpuCritical": 0.91, "cpuWarning": 0.71, "memoryCritical": 0.93, "memoryWarning": 0.73, "diskCritical": 0.87,
    "latencyP95Seconds": {"core": 0.25, "business": 1.3, "support": 2.7}, "certificateExpiryDays": 11,
    "serviceDownFor": "3m", "dependencyDownFor": "1m30s", "errorRatioFor": "4m", "crashLoopFor": "6m",
    "rolloutStuckFor": "7m", "rolloutInProgressFor": "8m", "latencyFor": "9m", "diskFor": "11m",
    "certificateFor": "13m", "saturationFor": "17m", "replicasMismatchFor": "19m",
    "replicationLagSeconds": 41, "replicationLagFor": "23m", "walArchivingFor": "12m", "backupGrace": "1h45m",
    "backupAgeFor": "14m", "poolSaturationFor": "16m",
}
LATENCY = {"core": "0.25", "business": "1.3", "support": "2.7"}
#: (alert, severity) -> (its `for`, the numbers its expression compares with, what its description says).
EXPECTED_RULES = {
    ("ErrorRatioHigh", "critical"): ("4m", ["0.11"], "More than 11% of the requests"),
    ("ErrorRatioHigh", "warning"): ("4m", ["0.031"], "More than 3.1% of the requests"),
    ("CpuSaturation", "critical"): ("17m", ["0.91"], "more than 91% of its CPU limit for 17m"),
    ("CpuSaturation", "warning"): ("17m", ["0.71"], "more than 71% of its CPU limit for 17m"),
    ("MemorySaturation", "critical"): ("17m", ["0.93"], "more than 93% of its memory limit for 17m"),
    ("MemorySaturation", "warning"): ("17m", ["0.73"], "more than 73% of its memory limit for 17m"),
    ("DiskSaturation", "critical"): ("11m", ["0.87"], "more than 87% full for 11m"),
    ("CertificateExpiring", "warning"): ("13m", ["11"], "expires within 11 days"),
    ("PodCrashLooping", "critical"): ("6m", ["1"], "CrashLoopBackOff for 6m"),
    ("RolloutInProgress", "info"): ("8m", [], "still runs pods of its previous version"),
    ("RolloutStuck", "info"): ("7m", [], "exceeded its progress deadline"),
    ("ReplicasMismatch", "info"): ("19m", [], "available replicas for 19m"),
    ("PostgresDown", "critical"): ("1m30s", [], "not scraped, for 1m30s"),
    ("RedisDown", "critical"): ("1m30s", [], "not scraped, for 1m30s"),
    ("RedisSentinelNoQuorum", "critical"): ("1m30s", [], "(SENTINEL CKQUORUM), for 1m30s"),
    ("RedisReplicaUnhealthy", "warning"): ("6m", ["0"], "unreachable for 6m"),
    ("PostgresReplicationLagHigh", "warning"): ("23m", ["41"], "more than 41s late for 23m"),
    ("PostgresWalArchivingFailing", "critical"): ("12m", [], "failed since its last success for 12m"),
    # staging's schedule, daily: 24 h between runs, plus the grace
    ("PostgresBackupTooOld", "warning"): ("14m", [f"{24 * HOUR + 6300}"], "no base backup newer than 1d1h45m "
                                          "(schedule `30 2 * * *`: up to 1d between runs, plus 1h45m)"),
    ("PostgresPoolSaturated", "warning"): ("16m", ["0"], "at every evaluation for 16m"),
}


def expected_rule(group: str, alert: str, severity: str) -> tuple[str, list[str], str]:
    if alert == "ServiceDown":
        return "3m", [], f"({group} tier) in codai-staging has answered a scrape for 3m"
    if alert == "LatencyHigh":
        return "9m", [LATENCY[group]], f"the {group} tier's objective of {LATENCY[group]}s for 9m"
    return EXPECTED_RULES[(alert, severity)]


#: The recorded signals that compare with a number: the traffic floor (errorRatioMinRequestRate) of the error
#: ratio and of the latency quantiles; every other signal compares with nothing.
FLOORED = {"codai:http_requests_error_ratio:rate5m", "codai:http_request_duration_seconds:p50_5m",
           "codai:http_request_duration_seconds:p95_5m", "codai:http_request_duration_seconds:p99_5m"}


def test_each_threshold_and_duration_reaches_its_own_alert_only():
    groups = rule_groups(watched(platform_with({}, {"alerts": DISTINCT_ALERTS})))
    assert alerts_and_records(groups) == (RULES_PER_GROUP, RECORDS_PER_GROUP)
    for key, group in groups.items():
        for record in (r for r in group["rules"] if "record" in r):
            compared = ["0.17"] if record["record"] in FLOORED else []
            assert re.findall(r"[<>]=? ([0-9.]+)", record["expr"]) == compared, (key, record["record"])
        for rule in alerting(group):
            where = (key, rule["alert"], rule["labels"]["severity"])
            for_, compared, described = expected_rule(*where)
            assert rule["for"] == for_, where
            # the numbers after each comparison operator: the thresholds this expression uses, and no other
            assert re.findall(r"[<>]=? ([0-9.]+)", rule["expr"]) == compared, where
            assert described in rule["annotations"]["description"], where


CORE_JOBS = 'namespace="codai-staging", job=~"codai|logai|memorai"'
CORE_CONTAINERS = 'namespace="codai-staging", container=~"codai|logai|memorai"'


def test_alerts_compare_the_recorded_signals_with_their_thresholds():
    groups = rule_groups(watched(platform_with({}, {"alerts": DISTINCT_ALERTS})))
    exprs = {(r["alert"], r["labels"]["severity"]): r["expr"] for r in alerting(groups["core"])}
    assert {key: exprs[key] for key in [("ErrorRatioHigh", "critical"), ("ErrorRatioHigh", "warning"),
                                        ("LatencyHigh", "warning"), ("CpuSaturation", "critical"),
                                        ("CpuSaturation", "warning"), ("MemorySaturation", "critical"),
                                        ("MemorySaturation", "warning")]} == {
        ("ErrorRatioHigh", "critical"): f"codai:http_requests_error_ratio:rate5m{{{CORE_JOBS}}} > 0.11",
        ("ErrorRatioHigh", "warning"): f"codai:http_requests_error_ratio:rate5m{{{CORE_JOBS}}} > 0.031",
        ("LatencyHigh", "warning"): f"codai:http_request_duration_seconds:p95_5m{{{CORE_JOBS}}} > 0.25",
        ("CpuSaturation", "critical"): f"codai:container_cpu_limit_ratio:rate5m{{{CORE_CONTAINERS}}} > 0.91",
        ("CpuSaturation", "warning"): f"codai:container_cpu_limit_ratio:rate5m{{{CORE_CONTAINERS}}} > 0.71",
        ("MemorySaturation", "critical"): f"codai:container_memory_limit_ratio:max{{{CORE_CONTAINERS}}} > 0.93",
        ("MemorySaturation", "warning"): f"codai:container_memory_limit_ratio:max{{{CORE_CONTAINERS}}} > 0.73",
    }
    assert exprs[("ServiceDown", "critical")] == "\nor ".join([
        f"codai:up:max{{{CORE_JOBS}}} == 0",
        *(f'absent(codai:up:max{{namespace="codai-staging", job="{job}", service="{job}"}})'
          for job in ("codai", "logai", "memorai"))])
    data = {r.get("alert", r.get("record")): r["expr"] for r in groups[DATA_TIER]["rules"]}
    # CloudNativePG's health metric; three instances: down only when none answers, as a replicated Redis
    up = 'codai:cnpg_collector_up:max{namespace="codai-staging"'
    assert data["PostgresDown"] == (f"max by (namespace, service) ({up}}}) == 0\n"
                                    f'or\nabsent({up}, service="postgres"}})')
    assert data["codai:cnpg_collector_up:max"] == ('label_replace(\n  max by (namespace, pod) '
                                                   '(cnpg_collector_up{namespace="codai-staging"}),\n  "service", '
                                                   '"postgres", "namespace", ".*"\n)')
    # one instance (staging's own sizing): down when it is
    single = rule_groups(observability_args(platform_with({}, {"alerts": DISTINCT_ALERTS})))[DATA_TIER]["rules"]
    (down,) = [r["expr"] for r in single if r.get("alert") == "PostgresDown"]
    assert down == f'{up}}} == 0\nor\nabsent({up}, service="postgres"}})'
    assert data["codai:redis_up:max"] == ('label_replace(\n  max by (namespace, pod) '
                                          '(redis_up{namespace="codai-staging"}),\n  "service", "redis", "namespace", '
                                          '".*"\n)')


def test_the_error_ratio_is_recorded_above_the_traffic_floor_only():
    groups = rule_groups(watched(platform_with({}, {"alerts": DISTINCT_ALERTS})))
    (ratio,) = [r["expr"] for r in groups["core"]["rules"]
                if r.get("record") == "codai:http_requests_error_ratio:rate5m"]
    requests = f"sum by (namespace, job) (rate(http_requests_total{{{CORE_JOBS}}}[5m]))"
    errors = f'sum by (namespace, job) (rate(http_requests_total{{{CORE_JOBS}, code=~"5.."}}[5m]))'
    assert ratio == (f"label_replace(\n  (\n    {errors}\n    /\n    {requests}\n  )\n  and\n  {requests} >= 0.17,"
                     '\n  "service", "$1", "job", "(.*)"\n)')


def test_a_tier_left_out_of_the_latency_objectives_keeps_its_default():
    plan = platform_with({}, {"alerts": {"latencyP95Seconds": {"core": 0.25}}})
    groups = rule_groups(observability_args(plan))
    latency = {key: re.findall(r"\} > ([0-9.]+)$", r["expr"]) for key in ("core", "business", "support")
               for r in alerting(groups[key]) if r["alert"] == AlertName.LATENCY_HIGH}
    assert latency == {"core": ["0.25"], "business": ["1.0"], "support": ["2.0"]}


#: A managed PostgreSQL instead of the in-cluster one: its provider watches it.
EXTERNAL_POSTGRES = {"mode": "external", "external": {
    "host": "pg.internal.example", "adminSecret": {"name": "pg-admin"}, "egressCidrs": ["10.0.0.0/24"]}}
LAG, ARCHIVING, BACKUP, POOL = ("PostgresReplicationLagHigh", "PostgresWalArchivingFailing", "PostgresBackupTooOld",
                                "PostgresPoolSaturated")


@pytest.mark.parametrize(("postgres", "replicated", "expected"), [
    pytest.param({}, True, ["PostgresDown", LAG, ARCHIVING, BACKUP, POOL], id="standbys-and-backups"),
    # a primary alone reports no lag: the rule stays, silent, until standbys join it
    pytest.param({}, False, ["PostgresDown", LAG, ARCHIVING, BACKUP, POOL], id="one-instance"),
    # CloudNativePG archives WAL only when backups are on: nothing to fail, nothing to be late
    pytest.param({"backup": {"enabled": False}}, True, ["PostgresDown", LAG, POOL], id="backups-off"),
    pytest.param(EXTERNAL_POSTGRES, True, [], id="managed"),
])
def test_postgres_alerts_watch_only_what_runs(postgres, replicated, expected):
    args = observability_args(platform_with({}, postgres=postgres))
    groups = rule_groups(replace(args, replicated=REPLICATED if replicated else ()))
    assert [r["alert"] for r in alerting(groups[DATA_TIER]) if r["alert"].startswith("Postgres")] == expected
    schedule = args.postgres_backup_schedule
    assert schedule == ("30 2 * * *" if ARCHIVING in expected else None)


def test_the_backup_age_is_judged_by_the_stacks_own_schedule():
    """A weekly schedule: 7 days between runs, plus the grace (2h)."""
    args = observability_args(platform_with({}, postgres={"backup": {"schedule": "0 3 * * 0"}}))
    assert args.postgres_backup_schedule == "0 3 * * 0"
    (rule,) = [r for r in alerting(rule_groups(args)[DATA_TIER]) if r["alert"] == BACKUP]
    assert re.findall(r"[<>]=? ([0-9.]+)", rule["expr"]) == [f"{7 * 24 * HOUR + 2 * HOUR}"]
    assert "no base backup newer than 7d2h (schedule `0 3 * * 0`: up to 7d between runs, plus 2h)" in (
        rule["annotations"]["description"])


def test_every_postgres_alert_is_postgres_s_for_routing_and_inhibition(rollouts_groups):
    """The ``service`` label inhibition compares: a PostgresDown page silences PostgreSQL's warnings."""
    for rule in alerting(rollouts_groups[DATA_TIER]):
        if rule["alert"].startswith("Postgres") and rule["alert"] != "PostgresDown":
            assert rule["expr"].endswith(',\n  "service", "postgres", "namespace", ".*"\n)'), rule["alert"]


def test_rules_watch_what_the_program_deploys(rollouts_plan, rollouts_namespace):
    """Deployments, certificates and jobs in the rules are the ones the program renders."""
    run = run_with(STACK, ROLLOUTS)
    for tier in Tier:
        scope = tier_scope(observability_args(rollouts_plan), tier)
        deployments = [d["metadata"]["name"] for d in run.of_kind("Deployment")
                       if d["metadata"]["labels"].get("codai.io/tier") == tier.value]
        assert sorted(scope.deployments) == sorted(deployments)
        secrets = [tls["secretName"] for i in run.of_kind("Ingress")
                   if i["metadata"]["labels"].get("codai.io/tier") == tier.value for tls in i["spec"].get("tls", [])]
        assert sorted(scope.certificates) == sorted(set(secrets))
    for monitor in run.of_kind("ServiceMonitor"):
        # job is the Service's app.kubernetes.io/name label: the service's name; PostgreSQL's instances and its
        # Poolers (each an exporter of CloudNativePG's) are both `postgres`
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
        job, name = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"], monitor["metadata"]["name"]
        assert job == name or (job, name) == ("postgres", "postgres-pooler")


# --- Prometheus accepts them ---------------------------------------------------------------------


@pytest.mark.realtool
def test_promtool_accepts_every_rule_group_of_every_stack(rollouts_rule_dir, rollouts_groups, tmp_path):
    promtool = require_tool("promtool")
    files = sorted(rollouts_rule_dir.glob("*.yaml"))
    for stack in STACKS:
        plan = load_settings(stack, stack_values(stack))
        for key, group in rule_groups(observability_args(plan)).items():
            files.append(tmp_path / f"{stack}-{key}.yaml")
            files[-1].write_text(dump_yaml(rule_file(group)))
    result = subprocess.run([promtool, "check", "rules", *map(str, files)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files) == len(rollouts_groups) * (1 + len(STACKS))


# --- and fire when they should: synthetic series -------------------------------------------------

MINUTES = 30  # samples per series, one a minute; every eval_time is within


def flat(value: float) -> str:
    return f"{value:g}x{MINUTES}"


def counter(per_minute: float) -> str:
    return f"0+{per_minute:g}x{MINUTES}"


@dataclass
class World:
    """Series of a healthy platform, by selector; a scenario breaks one thing.

    ``up`` of every service and the data tier are always present (alerts fire on their
    absence); the other series of a service only in the scenarios that need them
    (``Scenario.full``), which keeps promtool fast. The healthy scenario has them all.
    """

    namespace: str
    always: dict[str, str] = field(default_factory=dict)
    per_service: dict[str, dict[str, str]] = field(default_factory=dict)

    def baseline(self, full: tuple[str, ...] | None) -> dict[str, str]:
        chosen = self.per_service if full is None else {name: self.per_service[name] for name in full}
        return {key: value for series in (self.always, *chosen.values()) for key, value in series.items()}

    def sel(self, metric: str, **labels: str) -> str:
        body = ", ".join(f'{key}="{value}"' for key, value in {"namespace": self.namespace, **labels}.items())
        return f"{metric}{{{body}}}"

    def service(self, name: str, deployments: list[str], certificate: str | None) -> None:
        self.always[self.up(name)] = flat(1)
        series = self.per_service.setdefault(name, {})
        series[self.requests(name, "200")] = counter(600)  # 10 requests per second
        series[self.requests(name, "500")] = counter(0)
        series.update(self.latency(name, {"0.1": 600, "0.5": 600, "1": 600, "2.5": 600, "+Inf": 600}))
        series.update(self.container(f"{name}-0", name))
        for deployment in deployments:
            for metric in ("spec_replicas", "status_replicas", "status_replicas_updated", "status_replicas_available"):
                series[self.sel(f"kube_deployment_{metric}", deployment=deployment)] = flat(2)
            for status, value in (("true", 1), ("false", 0)):
                series[self.progressing(deployment, status)] = flat(value)
        if certificate:
            series[self.certificate(certificate)] = flat(60 * 86400)

    def container(self, pod: str, container: str) -> dict[str, str]:
        """A container at 10 % of its CPU and memory limits, not waiting."""
        series = {
            self.sel("container_cpu_usage_seconds_total", pod=pod, container=container): counter(6),
            self.sel("container_memory_working_set_bytes", pod=pod, container=container): flat(GI / 10),
            self.waiting(pod, container): flat(0),
        }
        for resource, limit in (("cpu", 1), ("memory", GI)):
            series[self.sel("kube_pod_container_resource_limits", pod=pod, container=container,
                            resource=resource)] = flat(limit)
        return series

    def up(self, job: str) -> str:
        return self.sel("up", job=job, service=job, pod=f"{job}-0")

    def requests(self, job: str, code: str) -> str:
        return self.sel("http_requests_total", job=job, code=code)

    def latency(self, job: str, per_minute: dict[str, float]) -> dict[str, str]:
        """Histogram series of ``job``: requests per minute at or below each bucket bound."""
        series = {self.sel("http_request_duration_seconds_bucket", job=job, le=le): counter(count)
                  for le, count in per_minute.items()}
        series[self.sel("http_request_duration_seconds_count", job=job)] = counter(per_minute["+Inf"])
        return series

    def progressing(self, deployment: str, status: str) -> str:
        return self.sel("kube_deployment_status_condition", deployment=deployment, condition="Progressing",
                        status=status)

    def waiting(self, pod: str, container: str) -> str:
        return self.sel("kube_pod_container_status_waiting_reason", pod=pod, container=container,
                        reason="CrashLoopBackOff")

    def backup(self, pod: str) -> str:
        return self.sel("cnpg_collector_last_available_backup_timestamp", pod=pod)

    def archiver(self, pod: str, kind: str) -> str:
        """Epoch of the primary's last WAL segment archived (``kind`` archived) or failed to (failed)."""
        return self.sel(f"cnpg_pg_stat_archiver_last_{kind}_time", pod=pod)

    def pool(self, pod: str, user: str) -> str:
        """Clients waiting in the pool of ``user``'s database (named after the service, as its role)."""
        return self.sel("cnpg_pgbouncer_pools_cl_waiting", pod=pod, database=user, user=user)

    def certificate(self, name: str) -> str:
        return (f'certmanager_certificate_expiration_timestamp_seconds{{namespace="cert-manager", '
                f'exported_namespace="{self.namespace}", name="{name}"}}')


def healthy_world(plan: StackPlan, namespace: str) -> World:
    world = World(namespace)
    for tier in Tier:
        scope = tier_scope(observability_args(plan), tier)
        for service in plan.in_tier(tier):
            world.service(service.name, [d for d in scope.deployments if re.fullmatch(f"{service.name}(-.+)?", d)],
                          f"{service.name}-tls" if service.spec.public else None)
    # the data tier: exporters, a volume and the database container
    world.always.update({
        **{world.sel("redis_up", pod=f"redis-{n}"): flat(1) for n in range(3)},
        **{world.sel(f"kubelet_volume_stats_{kind}_bytes", persistentvolumeclaim=claim): flat(size * GI)
           for claim in ("postgres-cluster-1", "data-redis-1") for kind, size in (("used", 10), ("capacity", 100))},
        **world.container("postgres-0", "postgres"),
    })
    # Redis replicated under Sentinel: what each sentinel's exporter reports when all is well.
    for pod in ("redis-0", "redis-1", "redis-2"):
        world.always.update({
            world.sel("redis_sentinel_master_ckquorum_status", pod=pod, master_name="redis",
                      message="OK 3 usable Sentinels"): flat(1),
            world.sel("redis_sentinel_master_slaves", pod=pod, master_name="redis"): flat(2),
            world.sel("redis_sentinel_master_ok_slaves", pod=pod, master_name="redis"): flat(2),
        })
    world.always.update(healthy_postgres(world))
    return world


#: A PgBouncer pod of each tier's Pooler (a Deployment's: ``<pooler>-<replica set>-<pod>``) and a pool of it.
POOLS = {"core": ("postgres-pooler-core-7c9d8f-x2x4q", "codai"),
         "business": ("postgres-pooler-business-5b6f4d-k8r2m", "bancai")}


def healthy_postgres(world: World) -> dict[str, str]:
    """CloudNativePG's series of three instances up for a month, the primary first: standbys caught up, WAL
    archived every minute (a failure two hours ago long since retried), a base backup 6 hours old (only the
    primary reports it: the standbys say 0), and no client waiting in any pool."""
    series = {}
    for pod in POSTGRES_PODS:
        series.update({
            world.sel(POSTGRES_UP, pod=pod, cluster="postgres-cluster"): flat(1),
            world.sel("cnpg_pg_replication_lag", pod=pod): flat(0),
            world.sel("cnpg_pg_postmaster_start_time", pod=pod): flat(-30 * 24 * HOUR),
            world.backup(pod): flat(-6 * HOUR if pod == POSTGRES_PODS[0] else 0),
        })
    series.update({world.archiver(POSTGRES_PODS[0], "archived"): counter(60),
                   world.archiver(POSTGRES_PODS[0], "failed"): flat(-2 * HOUR)})
    for pod, user in POOLS.values():
        series[world.pool(pod, user)] = flat(0)
    return series


@dataclass(frozen=True)
class Expect:
    """One alert that must be firing: its rule (alert, severity, tier), labels, and how $value prints."""

    alert: AlertName
    severity: Severity
    tier: str
    labels: dict[str, str]
    value: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    #: selector -> new values (None deletes the series)
    changes: Mapping[str, str | None]
    #: eval time -> the alerts firing then (and nothing else)
    checks: dict[str, list[Expect]]
    #: services with all their series (None: every service); the others only have ``up``
    full: tuple[str, ...] | None = ()


def _job(name: str, namespace: str) -> dict[str, str]:
    return {"namespace": namespace, "job": name, "service": name}


def _container(pod: str, container: str, namespace: str, service: str | None = None) -> dict[str, str]:
    return {"namespace": namespace, "pod": pod, "container": container, "service": service or container}


def scenarios(world: World) -> list[Scenario]:
    ns = world.namespace
    s, c = Severity.CRITICAL, Severity.WARNING
    i = Severity.INFO
    redis_master = {"namespace": ns, "master_name": "redis", "service": "redis"}
    postgres = {"namespace": ns, "service": "postgres"}
    return [
        Scenario("healthy platform", {}, {"1m": [], "16m": []}, full=None),
        Scenario("core service down for 2 minutes pages", {world.up("codai"): "0x30"}, {
            "1m": [],  # pending, not yet firing
            "2m": [Expect(AlertName.SERVICE_DOWN, s, "core", _job("codai", ns))],
        }),
        Scenario("core service with no target at all pages", {world.up("memorai"): None}, {
            "2m": [Expect(AlertName.SERVICE_DOWN, s, "core", _job("memorai", ns))],
        }),
        Scenario("business service down warns", {world.up("bancai"): "0x30"}, {
            "2m": [Expect(AlertName.SERVICE_DOWN, c, "business", _job("bancai", ns))],
        }),
        Scenario("support service down is info", {world.up("docs"): "0x30"}, {
            "2m": [Expect(AlertName.SERVICE_DOWN, i, "support", _job("docs", ns))],
        }),
        Scenario("business service at 3 % errors warns and does not page", {
            world.requests("bancai", "200"): counter(582), world.requests("bancai", "500"): counter(18),
        }, {
            "4m": [],
            "10m": [Expect(AlertName.ERROR_RATIO_HIGH, c, "business", _job("bancai", ns), "3%")],
        }, full=("bancai",)),
        Scenario("core service at 6 % errors pages (and warns)", {
            world.requests("logai", "200"): counter(564), world.requests("logai", "500"): counter(36),
        }, {
            "10m": [Expect(AlertName.ERROR_RATIO_HIGH, s, "core", _job("logai", ns), "6%"),
                    Expect(AlertName.ERROR_RATIO_HIGH, c, "core", _job("logai", ns), "6%")],
        }, full=("logai",)),
        Scenario("errors of a nearly idle service are not judged", {
            world.requests("docs", "200"): counter(1), world.requests("docs", "500"): counter(1),
        }, {"10m": []}, full=("docs",)),
        Scenario("CPU at 95 % of the limit pages, at 85 % warns", {
            world.sel("container_cpu_usage_seconds_total", pod="codai-0", container="codai"): counter(57),
            world.sel("container_cpu_usage_seconds_total", pod="bancai-0", container="bancai"): counter(51),
            world.sel("container_cpu_usage_seconds_total", pod="postgres-0", container="postgres"): counter(57),
        }, {
            # rate() over a series that starts at 0m reaches its full value at 5m; then 15m pending
            "19m": [],
            "21m": [Expect(AlertName.CPU_SATURATION, s, "core", _container("codai-0", "codai", ns), "95%"),
                    Expect(AlertName.CPU_SATURATION, c, "core", _container("codai-0", "codai", ns), "95%"),
                    Expect(AlertName.CPU_SATURATION, c, "business", _container("bancai-0", "bancai", ns), "85%"),
                    Expect(AlertName.CPU_SATURATION, s, DATA_TIER, _container("postgres-0", "postgres", ns), "95%"),
                    Expect(AlertName.CPU_SATURATION, c, DATA_TIER, _container("postgres-0", "postgres", ns), "95%")],
        }, full=("codai", "bancai")),
        Scenario("memory at 85 % of the limit warns", {
            world.sel("container_memory_working_set_bytes", pod="hub-0", container="hub"): flat(0.85 * GI),
        }, {"16m": [Expect(AlertName.MEMORY_SATURATION, c, "support", _container("hub-0", "hub", ns), "85%")]},
            full=("hub",)),
        Scenario("crash loop pages", {world.waiting("id-0", "id"): "0 0 1x30"}, {
            "3m": [],
            "10m": [Expect(AlertName.POD_CRASH_LOOPING, s, "support", _container("id-0", "id", ns))],
        }, full=("id",)),
        Scenario("certificate expiring in 10 days warns", {world.certificate("codai-tls"): flat(10 * 86400)}, {
            "16m": [Expect(AlertName.CERTIFICATE_EXPIRING, c, "core",
                           {"exported_namespace": ns, "name": "codai-tls", "service": "codai"}, "10.0")],
        }, full=("codai",)),
        # most requests between 1 s and 2.5 s: p95 is 2.275 s, above the business objective (1 s)
        Scenario("p95 above the business objective warns",
                 world.latency("bancai", {"0.1": 100, "0.5": 300, "1": 400, "2.5": 600, "+Inf": 600}), {
                     "5m": [],
                     "11m": [Expect(AlertName.LATENCY_HIGH, c, "business", _job("bancai", ns), "2.275s")],
                 }, full=("bancai",)),
        Scenario("database unreachable and cache exporter gone page", {
            **{world.sel(POSTGRES_UP, pod=pod, cluster="postgres-cluster"): "1 0x29" for pod in POSTGRES_PODS},
            **{world.sel("redis_up", pod=f"redis-{n}"): None for n in range(3)},
        }, {"5m": [Expect(AlertName.POSTGRES_DOWN, s, DATA_TIER, postgres),
                   Expect(AlertName.REDIS_DOWN, s, DATA_TIER, {"namespace": ns, "service": "redis"})]}),
        # Three instances: one down is the operator's to replace (or fail over from); none answering pages.
        Scenario("one of three PostgreSQL instances unreachable pages nobody", {
            world.sel(POSTGRES_UP, pod=POSTGRES_PODS[1], cluster="postgres-cluster"): "1 0x29"}, {"5m": []}),
        *postgres_scenarios(world),
        # Replicated: a server down is the sentinels' to replace; what pages is no server at all.
        Scenario("one of three Redis servers unreachable pages nobody", {
            world.sel("redis_up", pod="redis-1"): "1 0x29"}, {"5m": []}),
        Scenario("every Redis server unreachable pages", {
            world.sel("redis_up", pod=f"redis-{n}"): "1 0x29" for n in range(3)}, {
            "5m": [Expect(AlertName.REDIS_DOWN, s, DATA_TIER, {"namespace": ns, "service": "redis"})]}),
        Scenario("sentinels without a quorum page; a replica down warns after longer", {
            **{world.sel("redis_sentinel_master_ckquorum_status", pod=pod, master_name="redis",
                         message="OK 3 usable Sentinels"): "1 0x29" for pod in ("redis-0", "redis-1", "redis-2")},
            **{world.sel("redis_sentinel_master_ok_slaves", pod=pod, master_name="redis"): flat(1)
               for pod in ("redis-0", "redis-1", "redis-2")},
        }, {"1m30s": [], "3m": [Expect(AlertName.REDIS_SENTINEL_NO_QUORUM, s, DATA_TIER, redis_master)],
            "6m": [Expect(AlertName.REDIS_SENTINEL_NO_QUORUM, s, DATA_TIER, redis_master),
                   Expect(AlertName.REDIS_REPLICA_UNHEALTHY, c, DATA_TIER, redis_master, "1")]}),
        # A CloudNativePG instance's claim and a StatefulSet's, each named after the service it serves.
        Scenario("volume 95 % full pages", {
            world.sel("kubelet_volume_stats_used_bytes", persistentvolumeclaim="postgres-cluster-1"): flat(95 * GI),
            world.sel("kubelet_volume_stats_used_bytes", persistentvolumeclaim="data-redis-1"): flat(96 * GI),
        }, {"11m": [Expect(AlertName.DISK_SATURATION, s, DATA_TIER,
                           {"namespace": ns, "persistentvolumeclaim": "postgres-cluster-1", "service": "postgres"},
                           "95%"),
                    Expect(AlertName.DISK_SATURATION, s, DATA_TIER,
                           {"namespace": ns, "persistentvolumeclaim": "data-redis-1", "service": "redis"},
                           "96%")]}),
        Scenario("rollouts: in progress (canary), stuck (colour), replicas missing", {
            world.sel("kube_deployment_status_replicas", deployment="codai-canary"): flat(3),
            world.sel("kube_deployment_status_replicas_updated", deployment="codai-canary"): flat(1),
            world.progressing("wallet-green", "false"): flat(1),
            world.progressing("wallet-green", "true"): flat(0),
            world.sel("kube_deployment_status_replicas_available", deployment="admin"): flat(1),
        }, {
            "0m": [],  # pending
            "10m": [Expect(AlertName.ROLLOUT_IN_PROGRESS, i, "core",
                           {"namespace": ns, "deployment": "codai-canary", "service": "codai"}),
                    Expect(AlertName.ROLLOUT_STUCK, i, "business",
                           {"namespace": ns, "deployment": "wallet-green", "service": "wallet",
                            "condition": "Progressing", "status": "false"})],
            "16m": [Expect(AlertName.ROLLOUT_IN_PROGRESS, i, "core",
                           {"namespace": ns, "deployment": "codai-canary", "service": "codai"}),
                    Expect(AlertName.ROLLOUT_STUCK, i, "business",
                           {"namespace": ns, "deployment": "wallet-green", "service": "wallet",
                            "condition": "Progressing", "status": "false"}),
                    Expect(AlertName.REPLICAS_MISMATCH, i, "support",
                           {"namespace": ns, "deployment": "admin", "service": "admin"})],
        }, full=("codai", "wallet", "admin")),
    ]


def postgres_scenarios(world: World) -> list[Scenario]:
    """CloudNativePG's standbys, WAL archive, base backups (staging's daily schedule: 24 h + 2 h of grace) and
    PgBouncer pools, each fine and then failing."""
    ns, s, w = world.namespace, Severity.CRITICAL, Severity.WARNING
    primary, standby, lagging = POSTGRES_PODS

    def on(pod: str, **more: str) -> dict[str, str]:
        return {"namespace": ns, "pod": pod, "service": "postgres", **more}

    postgres = {"namespace": ns, "service": "postgres"}
    never_backed_up = {world.backup(pod): flat(0) for pod in POSTGRES_PODS}
    (core_pooler, core_user), (business_pooler, business_user) = POOLS.values()
    return [
        Scenario("a standby 5 s behind is fine; 60 s behind warns after replicationLagFor", {
            world.sel("cnpg_pg_replication_lag", pod=standby): flat(5),
            world.sel("cnpg_pg_replication_lag", pod=lagging): flat(60),
        }, {"4m": [], "6m": [Expect(AlertName.POSTGRES_REPLICATION_LAG_HIGH, w, DATA_TIER, on(lagging), "1m 0s")]}),
        # the archiver retries the failing segment every minute: each retry is the latest failure
        Scenario("WAL archiving failing since its last success pages after walArchivingFor", {
            world.archiver(primary, "failed"): counter(60), world.archiver(primary, "archived"): flat(-600),
        }, {"9m": [], "11m": [Expect(AlertName.POSTGRES_WAL_ARCHIVING_FAILING, s, DATA_TIER, on(primary))]}),
        Scenario("an archiving failure its retry recovers from pages nobody", {
            world.archiver(primary, "failed"): "-7200x2 180 240x27",
            world.archiver(primary, "archived"): "0 60 120 120 120 300+60x25",
        }, {"4m": [], "12m": []}),
        Scenario("a daily base backup 23 h old is fine", {world.backup(primary): flat(-23 * HOUR)}, {"20m": []}),
        Scenario("a daily base backup 27 h old warns after backupAgeFor", {
            world.backup(primary): flat(-27 * HOUR),
        }, {"14m": [], "16m": [Expect(AlertName.POSTGRES_BACKUP_TOO_OLD, w, DATA_TIER, postgres, "1d 3h 16m 0s")]}),
        Scenario("a cluster started an hour ago with no backup yet warns nobody", {
            **never_backed_up,
            **{world.sel("cnpg_pg_postmaster_start_time", pod=pod): flat(-HOUR) for pod in POSTGRES_PODS},
        }, {"20m": []}),
        # judged from its oldest instance: standbys restarted since do not make it younger
        Scenario("a cluster up for 27 h that never completed a backup warns", {
            **never_backed_up,
            world.sel("cnpg_pg_postmaster_start_time", pod=primary): flat(-27 * HOUR),
            **{world.sel("cnpg_pg_postmaster_start_time", pod=pod): flat(-2 * HOUR) for pod in (standby, lagging)},
        }, {"16m": [Expect(AlertName.POSTGRES_BACKUP_TOO_OLD, w, DATA_TIER, postgres, "1d 3h 16m 0s")]}),
        Scenario("a pool keeping clients waiting warns; a burst queued for an instant does not", {
            world.pool(core_pooler, core_user): flat(3),
            world.pool(business_pooler, business_user): "0 0 4 0 0 2 0x24",
        }, {"4m": [], "6m": [Expect(AlertName.POSTGRES_POOL_SATURATED, w, DATA_TIER,
                                    on(core_pooler, database=core_user, user=core_user), "3")]}),
    ]


def expand(template: str, labels: dict[str, str], value: str | None) -> str:
    """What Prometheus prints for ``template``: labels substituted, $value as the scenario says it prints."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    if "$value" in text:
        assert value is not None, f"give the printed value for {template!r}"
        text = re.sub(r"\{\{ \$value[^}]*\}\}", value, text)
    return text


def expected_alert(expect: Expect, groups: dict[str, RuleGroup]) -> dict[str, Any]:
    (rule,) = [r for r in alerting(groups[expect.tier])
               if r["alert"] == expect.alert and r["labels"]["severity"] == expect.severity]
    labels = {**expect.labels, **rule["labels"]}
    return {"exp_labels": labels,
            "exp_annotations": {key: expand(text, labels, expect.value) for key, text in rule["annotations"].items()}}


def promtool_tests(world: World, groups: dict[str, RuleGroup], cases: list[Scenario]) -> dict[str, Any]:
    tests = []
    for case in cases:
        series = {**world.baseline(case.full), **case.changes}
        checks = [
            {"eval_time": at, "alertname": alert.value,
             "exp_alerts": [expected_alert(e, groups) for e in firing if e.alert == alert]}
            for at, firing in case.checks.items()
            for alert in AlertName  # every alert, so an unexpected one fails the scenario
        ]
        tests.append({
            "name": case.name,
            "interval": "1m",
            "input_series": [{"series": key, "values": values} for key, values in series.items() if values],
            "alert_rule_test": checks,
        })
    return {"rule_files": [f"{key}.yaml" for key in groups], "evaluation_interval": "1m", "tests": tests}


def run_promtool_tests(rule_dir: Path, document: dict[str, Any], name: str) -> tuple[int, str]:
    """``promtool test rules`` on the scenarios, split over the CPUs; (worst exit code, output)."""
    promtool = require_tool("promtool")
    tests = document["tests"]
    chunks = min(len(tests), os.cpu_count() or 1)
    processes = []
    for index in range(chunks):
        path = rule_dir / f"{name}-{index}.test.yaml"
        path.write_text(json.dumps({**document, "tests": tests[index::chunks]}))  # JSON is YAML, and fast to write
        processes.append(subprocess.Popen([promtool, "test", "rules", path.name], cwd=rule_dir, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [process.communicate()[0] for process in processes]
    return max(process.returncode for process in processes), "\n".join(outputs)


@pytest.mark.realtool
def test_alerts_fire_exactly_when_they_should(rollouts_rule_dir, rollouts_groups, rollouts_plan,
                                              rollouts_namespace):
    world = healthy_world(rollouts_plan, rollouts_namespace)
    cases = scenarios(world)
    assert {e.alert for case in cases for firing in case.checks.values() for e in firing} == set(AlertName)
    code, output = run_promtool_tests(rollouts_rule_dir, promtool_tests(world, rollouts_groups, cases), "scenarios")
    assert code == 0, output[-8000:]
    assert "FAILED" not in output and "SUCCESS" in output


@pytest.mark.realtool
@pytest.mark.parametrize("wrong", ["critical for 3 % errors", "silence on a core outage"])
def test_a_wrong_expectation_fails_promtool(rollouts_rule_dir, rollouts_groups, rollouts_plan, rollouts_namespace,
                                            wrong):
    """The harness can fail: the same scenarios with one expectation falsified are rejected."""
    world = healthy_world(rollouts_plan, rollouts_namespace)
    cases = {case.name: case for case in scenarios(world)}
    if wrong == "critical for 3 % errors":
        case = cases["business service at 3 % errors warns and does not page"]
        (warning,) = case.checks["10m"]
        falsified = Scenario(case.name, case.changes, {"10m": [warning, Expect(
            AlertName.ERROR_RATIO_HIGH, Severity.CRITICAL, "business", warning.labels, "3%")]})
    else:
        case = cases["core service down for 2 minutes pages"]
        falsified = Scenario(case.name, case.changes, {"2m": []})
    document = promtool_tests(world, rollouts_groups, [falsified])
    code, output = run_promtool_tests(rollouts_rule_dir, document, "falsified")
    assert code != 0
    assert "FAILED" in output and falsified.name in output
