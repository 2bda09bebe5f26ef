"""Monitoring as each stack really deploys it: the platform's own PrometheusRules and AlertmanagerConfig, through
the real tools, and what `make render` writes for amtool. The builders are tested in test_monitoring_*.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from services.catalog import CATALOG
from services.tiers import Tier
from tests.conftest import require_tool
from tools.alertmanager_config import dump_yaml
from tools.offline import StackRun
from tools.render import write_stack


def alerts_by_tier(run: StackRun) -> dict[str, list[dict[str, object]]]:
    return {rule["metadata"]["name"].removeprefix("codai-alerts-"): [r for g in rule["spec"]["groups"]
                                                                      for r in g["rules"] if "alert" in r]
            for rule in run.of_kind("PrometheusRule")}


@pytest.mark.realtool
def test_promtool_accepts_every_rule_group_the_stack_deploys(any_stack, tmp_path):
    promtool = require_tool("promtool")
    files = []
    for rule in any_stack.of_kind("PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['name']}.yaml"
        path.write_text(dump_yaml({"groups": rule["spec"]["groups"]}))
        files.append(str(path))
    assert len(files) == 4  # core, business, support, data
    result = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 4


#: Scrape interval and ServiceDown severity per tier, written out.
TIER_WATCH = {Tier.CORE: ("15s", "critical"), Tier.BUSINESS: ("30s", "warning"), Tier.SUPPORT: ("60s", "info")}


def test_every_service_is_watched_at_its_tiers_interval_and_severity(any_stack):
    rules = alerts_by_tier(any_stack)
    severities = {tier: {r["labels"]["severity"] for r in tier_rules if r["alert"] == "ServiceDown"}  # type: ignore[index]
                  for tier, tier_rules in rules.items()}
    for spec in CATALOG.values():
        interval, severity = TIER_WATCH[spec.tier]
        (endpoint,) = any_stack.get("ServiceMonitor", spec.name)["spec"]["endpoints"]
        assert endpoint["interval"] == interval, spec.name
        assert severities[spec.tier.value] == {severity}
        (down,) = [r for r in rules[spec.tier.value] if r["alert"] == "ServiceDown"]
        assert f'job="{spec.name}"' in str(down["expr"]), spec.name
    assert {alert["labels"]["severity"] for tier in rules.values() for alert in tier} == {  # type: ignore[index]
        "critical", "warning", "info"}


@pytest.mark.realtool
def test_render_writes_an_alertmanager_yml_that_amtool_checks_and_routes(any_stack, tmp_path: Path):
    amtool = require_tool("amtool")
    written = write_stack(any_stack, tmp_path)
    config = tmp_path / any_stack.stack / "alertmanager.yml"
    assert config in written and len(written) == len(any_stack.kubernetes_objects()) + 1
    check = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    namespace = any_stack.outputs["namespace"]
    for severity, receiver in (("critical", "pagerduty"), ("warning", "slack"), ("info", "digest")):
        routed = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", f"severity={severity}",
             f"namespace={namespace}", "service=wallet", "alertname=ServiceDown"],
            capture_output=True, text=True, check=True).stdout.split()
        assert routed == [f"{namespace}/codai-alertmanager/{receiver}"], severity
    # What is written is what the stack deploys: the receivers' keys come from Secrets, never in the file.
    native = yaml.safe_load(config.read_text())
    assert {r["name"].rsplit("/", 1)[-1] for r in native["receivers"]} >= {"pagerduty", "slack", "digest"}
