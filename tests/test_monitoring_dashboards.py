"""Grafana dashboards: well-formed JSON models, every service covered, and PromQL that Prometheus parses."""

from __future__ import annotations

import itertools
import re
import subprocess
from typing import Any

import pytest

from components.monitoring.dashboards import GRID_WIDTH, MAX_UID, dashboard_json, dashboards, uid
from services.tiers import Tier
from settings.loader import PlatformSettings
from tests.conftest import require_tool
from tools.alertmanager_config import dump_yaml
from tools.offline import stack_settings

STACK = "staging"


@pytest.fixture(scope="module")
def platform() -> PlatformSettings:
    return stack_settings(STACK)


@pytest.fixture(scope="module")
def models(platform: PlatformSettings) -> dict[str, dict[str, Any]]:
    namespace = platform.settings.environment.namespace
    return {d.slug: dashboard_json(d, namespace) for d in dashboards(platform, namespace)}


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


def test_overview_shows_every_service_by_tier(models, platform):
    jobs = {name for panel in panels(models["overview"]) for target in panel["targets"]
            for regex in re.findall(r'(?:job|container)=~"([^"]+)"', target["expr"]) for name in regex.split("|")}
    assert jobs == {s.name for s in platform.services}
    rows = [p["title"] for p in models["overview"]["panels"] if p["type"] == "row"]
    assert rows == [f"{t.value.capitalize()} tier ({len(platform.in_tier(t))} services)" for t in Tier]
    (data,) = [p for p in panels(models["overview"]) if p["title"] == "Data tier: reachable"]
    assert [t["legendFormat"] for t in data["targets"]] == ["PostgreSQL", "Redis"]


def test_tier_dashboards_show_the_golden_signals_of_their_services(models, platform):
    for tier in Tier:
        model = models[tier.value]
        (picker,) = [v for v in model["templating"]["list"] if v["name"] == "service"]
        assert sorted(picker["allValue"].split("|")) == sorted(s.name for s in platform.in_tier(tier))
        titles = {p["title"] for p in panels(model)}
        assert {"Request rate", "Error ratio (5xx)", "Latency", "CPU (share of limit)",
                "Memory (share of limit)"} <= titles
        assert all('"$service"' in t["expr"] for p in panels(model) for t in p["targets"])


def test_panel_thresholds_are_the_alert_thresholds(models, platform):
    alerts = platform.settings.monitoring.alerts
    for tier in Tier:
        by_title = {p["title"]: p for p in panels(models[tier.value])}
        steps = [s["value"] for s in by_title["Error ratio (5xx)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        assert steps == [None, alerts.error_ratio_warning, alerts.error_ratio_critical]
        latency = by_title["Latency"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert latency[1]["value"] == alerts.latency_p95_seconds[tier]


def test_uids_stay_unique_and_short_for_long_namespaces():
    long_namespace = "codai-" + "x" * 50
    assert len(uid(long_namespace, "overview")) == MAX_UID
    assert uid(long_namespace, "overview") != uid(long_namespace, "core")
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
