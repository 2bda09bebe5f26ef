"""Grafana dashboards: well-formed JSON models, every service covered, and PromQL that Prometheus parses."""

from __future__ import annotations

import itertools
import re
import subprocess
from typing import Any

import pytest

from components.monitoring.dashboards import GRID_WIDTH, MAX_UID, dashboard_json, dashboards, uid
from components.platform import observability_args
from services.tiers import Tier
from settings.loader import StackPlan, load_settings
from tests.conftest import require_tool
from tools.alertmanager_config import dump_yaml
from tools.offline import stack_plan, stack_values

STACK = "staging"


@pytest.fixture(scope="module")
def plan() -> StackPlan:
    return stack_plan(STACK)


@pytest.fixture(scope="module")
def models(plan: StackPlan) -> dict[str, dict[str, Any]]:
    namespace = plan.settings.environment.namespace
    return {d.slug: dashboard_json(d, namespace) for d in dashboards(observability_args(plan))}


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def test_an_overview_and_one_dashboard_per_tier(models):
    assert sorted(models) == sorted(["overview", *(t.value for t in Tier)])
    assert len({m["uid"] for m in models.values()}) == len(models)


def test_models_are_well_formed(models):
    for model in models.values():
        assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36
        assert len(model["uid"]) <= MAX_UID and model["title"]
        (datasource,) = [v for v in model["templating"]["list"] if v["name"] == "datasource"]
        assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
        ids = [p["id"] for p in model["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in panels(model):
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(set(refs)) == len(refs)
            assert all(t["datasource"]["uid"] == "${datasource}" and t["expr"] for t in panel["targets"])


def test_panels_fit_the_grid_without_overlapping(models):
    for model in models.values():
        boxes = [p["gridPos"] for p in model["panels"]]
        for box in boxes:
            assert set(box) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in box.values())
            assert box["x"] >= 0 and box["x"] + box["w"] <= GRID_WIDTH
        for a, b in itertools.combinations(boxes, 2):
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, (a, b)


def test_overview_shows_every_service_by_tier(models, plan):
    jobs = {name for panel in panels(models["overview"]) for target in panel["targets"]
            for regex in re.findall(r'(?:job|container)=~"([^"]+)"', target["expr"]) for name in regex.split("|")}
    assert jobs == {s.name for s in plan.services}
    rows = [p["title"] for p in models["overview"]["panels"] if p["type"] == "row"]
    assert rows == [f"{t.value.capitalize()} tier ({len(plan.in_tier(t))} services)" for t in Tier]
    (data,) = [p for p in panels(models["overview"]) if p["title"] == "Data tier: reachable"]
    assert [(t["expr"], t["legendFormat"]) for t in data["targets"]] == [
        ('codai:cnpg_collector_up:max{namespace="codai-staging"}', "PostgreSQL {{pod}}"),
        ('codai:redis_up:max{namespace="codai-staging"}', "Redis {{pod}}")]


def test_tier_dashboards_show_the_golden_signals_of_their_services(models, plan):
    for tier in Tier:
        model = models[tier.value]
        (picker,) = [v for v in model["templating"]["list"] if v["name"] == "service"]
        assert sorted(picker["allValue"].split("|")) == sorted(s.name for s in plan.in_tier(tier))
        titles = {p["title"] for p in panels(model)}
        assert {"Request rate", "Error ratio (5xx)", "Latency", "CPU (share of limit)",
                "Memory (share of limit)"} <= titles
        assert all('"$service"' in t["expr"] for p in panels(model) for t in p["targets"])


def test_panels_draw_the_recorded_signals_the_alerts_compare(models):
    """Each query is a signal recorded by the rule groups (components/monitoring/signals.py), never its own
    rate() or histogram_quantile(): a panel measures with the window, grouping and traffic floor of its alert."""
    jobs, containers = 'namespace="codai-staging", job=~"$service"', 'namespace="codai-staging", container=~"$service"'
    assert {p["title"]: [(t["expr"], t["legendFormat"]) for t in p["targets"]] for p in panels(models["core"])} == {
        "Up": [(f"codai:up:max{{{jobs}}}", "{{job}}")],
        "Request rate": [(f"codai:http_requests:rate5m{{{jobs}}}", "{{job}}")],
        "Error ratio (5xx)": [(f"codai:http_requests_error_ratio:rate5m{{{jobs}}}", "{{job}}")],
        "Latency": [(f"codai:http_request_duration_seconds:p{q}_5m{{{jobs}}}", f"{{{{job}}}} p{q}")
                    for q in (50, 95, 99)],
        "CPU (share of limit)": [(f"codai:container_cpu_limit_ratio:rate5m{{{containers}}}", "{{pod}}")],
        "Memory (share of limit)": [(f"codai:container_memory_limit_ratio:max{{{containers}}}", "{{pod}}")],
        "Container restarts": [(f"sum by (container) (increase(kube_pod_container_status_restarts_total"
                                f"{{{containers}}}[$__rate_interval]))", "{{container}}")],
    }


def test_panel_thresholds_are_the_alert_thresholds():
    """Each panel draws its own alert's thresholds: every one set to a value no other threshold has."""
    values = stack_values(STACK)
    values["monitoring"] = {"alerts": {
        "errorRatioWarning": 0.031, "errorRatioCritical": 0.11, "cpuWarning": 0.71, "cpuCritical": 0.91,
        "memoryWarning": 0.73, "memoryCritical": 0.93, "latencyP95Seconds": {"core": 0.25, "business": 1.3,
                                                                             "support": 2.7}}}
    plan = load_settings(STACK, values)
    namespace = plan.settings.environment.namespace
    models = {d.slug: dashboard_json(d, namespace) for d in dashboards(observability_args(plan))}
    latency = {Tier.CORE: 0.25, Tier.BUSINESS: 1.3, Tier.SUPPORT: 2.7}
    for tier in Tier:
        by_title = {p["title"]: p for p in panels(models[tier.value])}
        steps = {title: [s["value"] for s in by_title[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]]
                 for title in ("Error ratio (5xx)", "Latency", "CPU (share of limit)", "Memory (share of limit)")}
        assert steps == {"Error ratio (5xx)": [None, 0.031, 0.11], "Latency": [None, latency[tier]],
                         "CPU (share of limit)": [None, 0.71, 0.91], "Memory (share of limit)": [None, 0.73, 0.93]}, \
            tier


def test_uids_stay_unique_and_short_for_long_namespaces():
    long_namespace = "codai-" + "x" * 50
    # cut to MAX_UID (40): the first 31 characters, a dash and 8 hex digits of the full name's hash
    assert MAX_UID == 40
    assert uid(long_namespace, "overview") == "codai-xxxxxxxxxxxxxxxxxxxxxxxxx-bc34445e"
    assert uid(long_namespace, "core") == "codai-xxxxxxxxxxxxxxxxxxxxxxxxx-0cc81696"
    assert uid("codai-" + "x" * 29, "core") == "codai-" + "x" * 29 + "-core"  # exactly 40: kept whole
    assert uid("codai-" + "x" * 30, "core") == "codai-xxxxxxxxxxxxxxxxxxxxxxxxx-840daf29"  # 41: cut
    assert uid("codai", "overview") == "codai-overview"


@pytest.mark.realtool
def test_every_query_is_valid_promql(models, tmp_path):
    """Each panel query, with Grafana's variables filled in, as a recording rule that promtool checks."""
    promtool = require_tool("promtool")
    rules = []
    for slug, model in models.items():
        for panel in panels(model):
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "5m").replace("$service", "codai|logai")
                rules.append({"record": f"dashboard:{slug}_{panel['id']}_{target['refId']}", "expr": expr})
    path = tmp_path / "dashboards.yaml"
    path.write_text(dump_yaml({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
