"""Alerts and dashboards read the same recorded signals: the series a panel colours is the series its alert fires on.

``promtool test rules`` runs the rendered rule groups (recording rules, then alerts) on synthetic
series with several faults at once, some above a warning threshold only, some above the
critical one, one below the traffic floor. At a time after every alert's ``for``, each panel
query of the rendered dashboards (read from their JSON, Grafana's variables filled in) is
evaluated above each of its threshold steps (``promql_expr_test``), and each alert's firing
instances are checked (``alert_rule_test``), both against the same label sets: the series a
panel colours red are exactly those its critical alert fires on, orange its warning.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.labels import DATA_TIER
from components.monitoring.dashboards import dashboard_json, dashboards
from components.monitoring.rules import AlertName, RuleGroup
from components.platform import observability_args
from services.tiers import Severity
from settings.loader import StackPlan
from tests.monitoring_fixtures import POSTGRES_PODS, POSTGRES_UP
from tests.test_monitoring_rules import (
    GI,
    MINUTES,
    Expect,
    alerting,
    counter,
    expected_alert,
    flat,
    healthy_world,
    run_promtool_tests,
)

#: The alert each recorded signal drawn with thresholds stands for (the p50 and p99 latency lines are drawn
#: against the p95 objective for context; the restart count has no alert and no recorded signal).
SIGNAL_ALERTS = {
    "codai:up:max": AlertName.SERVICE_DOWN,
    "codai:http_requests_error_ratio:rate5m": AlertName.ERROR_RATIO_HIGH,
    "codai:http_request_duration_seconds:p95_5m": AlertName.LATENCY_HIGH,
    "codai:container_cpu_limit_ratio:rate5m": AlertName.CPU_SATURATION,
    "codai:container_memory_limit_ratio:max": AlertName.MEMORY_SATURATION,
    f"codai:{POSTGRES_UP}:max": AlertName.POSTGRES_DOWN,
    "codai:redis_up:max": AlertName.REDIS_DOWN,
}
#: Panels with threshold steps and no alert behind them.
WITHOUT_ALERT = {"Container restarts"}
#: ServiceDown's severity per tier (a red "up" panel); every other red is critical, orange is warning.
DOWN = {"core": Severity.CRITICAL, "business": Severity.WARNING, "support": Severity.INFO}
COLOURS = {"orange": Severity.WARNING, "red": Severity.CRITICAL}


@pytest.fixture(scope="module")
def models(rollouts_plan: StackPlan, rollouts_namespace: str) -> dict[str, dict[str, Any]]:
    return {d.slug: dashboard_json(d, rollouts_namespace) for d in dashboards(observability_args(rollouts_plan))}


def drawn(models: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """(tier, panel title, query with the variables filled in, threshold steps) of every panel target.

    The overview's panels belong to the tier of the row above them (the data tier before the first row); a
    tier dashboard's ``$service`` becomes every service of the tier (the picker's "All").
    """
    found = []
    for slug, model in models.items():
        tier = DATA_TIER if slug == "overview" else slug
        (picker,) = [v["allValue"] for v in model["templating"]["list"] if v["name"] == "service"] or [""]
        for panel in model["panels"]:
            if panel["type"] == "row":
                tier = panel["title"].split()[0].lower()
                continue
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            for target in panel["targets"]:
                found.append((tier, panel["title"], target["expr"].replace("$service", picker), steps))
    return found


def signal_of(expr: str) -> str:
    return expr.split("{", 1)[0]


def red_and_orange(expr: str, steps: list[dict[str, Any]], tier: str) -> list[tuple[str, AlertName, Severity]]:
    """Each coloured region of the panel as a PromQL filter, with the alert and severity it stands for."""
    alert = SIGNAL_ALERTS[signal_of(expr)]
    base, *above = steps
    if base["color"] == "red":  # red below the first step (up: 0), green from it
        severity = DOWN[tier] if alert == AlertName.SERVICE_DOWN else Severity.CRITICAL
        return [(f"({expr}) < {above[0]['value']}", alert, severity)]
    return [(f"({expr}) > {step['value']}", alert, COLOURS[step["color"]]) for step in above]


def faults(world: Any) -> dict[str, str | None]:
    """logai 6 % errors (red), bancai 3 % (orange) and slow, docs failing half of an idle trickle (below the
    floor: nothing); codai at 95 % CPU (red) and down, bancai 85 % (orange); id at 95 % memory (red), hub 85 %
    (orange); PostgreSQL unreachable."""
    return {
        world.requests("logai", "200"): counter(564), world.requests("logai", "500"): counter(36),
        world.requests("bancai", "200"): counter(582), world.requests("bancai", "500"): counter(18),
        world.requests("docs", "200"): counter(1), world.requests("docs", "500"): counter(1),
        **world.latency("bancai", {"0.1": 100, "0.5": 300, "1": 400, "2.5": 600, "+Inf": 600}),
        world.sel("container_cpu_usage_seconds_total", pod="codai-0", container="codai"): counter(57),
        world.sel("container_cpu_usage_seconds_total", pod="bancai-0", container="bancai"): counter(51),
        world.sel("container_memory_working_set_bytes", pod="id-0", container="id"): flat(0.95 * GI),
        world.sel("container_memory_working_set_bytes", pod="hub-0", container="hub"): flat(0.85 * GI),
        world.up("codai"): flat(0),
        world.sel(POSTGRES_UP, pod=POSTGRES_PODS[0], cluster="postgres-cluster"): flat(0),
    }


def firing(ns: str) -> list[Expect]:
    """Every instance of the checked alerts that fires under ``faults``, and nothing else."""
    s, w = Severity.CRITICAL, Severity.WARNING

    def job(name: str) -> dict[str, str]:
        return {"namespace": ns, "job": name, "service": name}

    def container(name: str) -> dict[str, str]:
        return {"namespace": ns, "pod": f"{name}-0", "container": name, "service": name}

    return [
        Expect(AlertName.ERROR_RATIO_HIGH, s, "core", job("logai"), "6%"),
        Expect(AlertName.ERROR_RATIO_HIGH, w, "core", job("logai"), "6%"),
        Expect(AlertName.ERROR_RATIO_HIGH, w, "business", job("bancai"), "3%"),
        Expect(AlertName.LATENCY_HIGH, w, "business", job("bancai"), "2.275s"),
        Expect(AlertName.CPU_SATURATION, s, "core", container("codai"), "95%"),
        Expect(AlertName.CPU_SATURATION, w, "core", container("codai"), "95%"),
        Expect(AlertName.CPU_SATURATION, w, "business", container("bancai"), "85%"),
        Expect(AlertName.MEMORY_SATURATION, s, "support", container("id"), "95%"),
        Expect(AlertName.MEMORY_SATURATION, w, "support", container("id"), "95%"),
        Expect(AlertName.MEMORY_SATURATION, w, "support", container("hub"), "85%"),
        Expect(AlertName.SERVICE_DOWN, s, "core", job("codai")),
        Expect(AlertName.POSTGRES_DOWN, s, DATA_TIER,
               {"namespace": ns, "pod": POSTGRES_PODS[0], "service": "postgres"}),
    ]


def minutes(duration: str) -> float:
    return sum(float(n) * {"h": 60, "m": 1, "s": 1 / 60}[unit] for n, unit in re.findall(r"([0-9.]+)([hms])", duration))


def labels(values: dict[str, str]) -> str:
    return "{" + ", ".join(f'{key}="{value}"' for key, value in sorted(values.items())) + "}"


def signal_tests(groups: dict[str, RuleGroup], models: dict[str, dict[str, Any]], platform: StackPlan,
                 namespace: str, expected: list[Expect]) -> dict[str, Any]:
    world = healthy_world(platform, namespace)
    checked = set(SIGNAL_ALERTS.values())
    # after every checked alert's `for`, rates having filled their 5 m window
    last = max(minutes(r["for"]) for g in groups.values() for r in alerting(g) if r["alert"] in checked) + 6
    assert last < MINUTES
    at = f"{last:g}m"
    queries = []
    for tier, title, expr, steps in drawn(models):
        if signal_of(expr) not in SIGNAL_ALERTS:
            assert title in WITHOUT_ALERT or len(steps) == 1 or "p50" in expr or "p99" in expr, (title, expr)
            continue
        for query, alert, severity in red_and_orange(expr, steps, tier):
            coloured = [e for e in expected if (e.alert, e.severity, e.tier) == (alert, severity, tier)]
            queries.append({"expr": f"({query}) >= bool 0", "eval_time": at,
                            "exp_samples": [{"labels": labels(e.labels), "value": 1} for e in coloured]})
    alerts = [{"eval_time": at, "alertname": alert.value,
               "exp_alerts": [expected_alert(e, groups) for e in expected if e.alert == alert]}
              for alert in AlertName if alert in checked]
    series = {**world.baseline(("logai", "bancai", "docs", "codai", "id", "hub")), **faults(world)}
    test = {"name": "panels colour what alerts fire on", "interval": "1m",
            "input_series": [{"series": key, "values": values} for key, values in series.items() if values],
            "promql_expr_test": queries, "alert_rule_test": alerts}
    return {"rule_files": [f"{key}.yaml" for key in groups], "evaluation_interval": "1m", "tests": [test]}


@pytest.mark.realtool
def test_a_panel_colours_red_exactly_the_series_its_critical_alert_fires_on(rollouts_rule_dir, rollouts_groups, models,
                                                                           rollouts_plan, rollouts_namespace):
    document = signal_tests(rollouts_groups, models, rollouts_plan, rollouts_namespace, firing(rollouts_namespace))
    (test,) = document["tests"]
    coloured = {(q["expr"].split("{")[0].lstrip("("), s["labels"]) for q in test["promql_expr_test"]
                for s in q["exp_samples"]}
    # every signal with an alert is drawn and checked, and red or orange somewhere in this scenario
    assert {name for name, _ in coloured} == set(SIGNAL_ALERTS) - {"codai:redis_up:max"}
    assert any(q["exp_samples"] == [] for q in test["promql_expr_test"])  # and regions nothing reaches
    code, output = run_promtool_tests(rollouts_rule_dir, document, "signals")
    assert code == 0, output[-8000:]
    assert "SUCCESS" in output


@pytest.mark.realtool
def test_a_panel_and_an_alert_that_disagree_fail_promtool(rollouts_rule_dir, rollouts_groups, models, rollouts_plan,
                                                          rollouts_namespace):
    """The harness can fail: bancai (3 %) said to be red and paging is refused."""
    ns = rollouts_namespace
    wrong = [*firing(ns), Expect(AlertName.ERROR_RATIO_HIGH, Severity.CRITICAL, "business",
                                 {"namespace": ns, "job": "bancai", "service": "bancai"}, "3%")]
    document = signal_tests(rollouts_groups, models, rollouts_plan, ns, wrong)
    code, output = run_promtool_tests(rollouts_rule_dir, document, "disagree")
    assert code != 0
    assert "FAILED" in output


#: What computing a signal looks like: only recording rules may do it.
RAW = re.compile(r"\b(rate|irate|increase|histogram_quantile)\(")


def test_alerts_and_panels_read_recorded_signals_only(rollouts_groups, models):
    records = {r["record"]: r["expr"] for g in rollouts_groups.values() for r in g["rules"] if "record" in r}
    alerts = [r["expr"] for g in rollouts_groups.values() for r in alerting(g)]
    queries = [expr for _, title, expr, _ in drawn(models) if title not in WITHOUT_ALERT]
    assert [e for e in alerts + queries if RAW.search(e)] == []
    # every query is one recorded signal, selected, and every signal an alert or a panel reads is recorded
    assert all(re.fullmatch(r"codai:[a-z0-9_:]+\{[^}]*\}", q) for q in queries), queries
    read = {name for expr in alerts + queries for name in re.findall(r"codai:[a-z0-9_:]+", expr)}
    assert read == set(records)
    # the source metrics of the signals appear in recording rules only
    for metric in ("http_requests_total", "http_request_duration_seconds", "container_cpu_usage_seconds_total",
                   "container_memory_working_set_bytes", "kube_pod_container_resource_limits", POSTGRES_UP,
                   "redis_up", "up{"):
        assert [e for e in alerts + queries if re.search(rf"(?<![:\w]){re.escape(metric)}", e)] == [], metric
