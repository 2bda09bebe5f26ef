"""The Observability component under Pulumi's mocks: the objects it registers, valid for their schemas."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import jsonschema
import kubernetes_validate
import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.labels import PLATFORM_TIER, TIER_LABEL
from components.monitoring import ALERTMANAGER_CONFIG, PROMETHEUS_RULE, TYPE_TOKEN, Observability
from components.monitoring.alertmanager import alertmanager_config_spec
from components.monitoring.rules import rule_groups
from components.platform import observability_args
from settings.loader import StackPlan
from tests.conftest import require_tool
from tests.test_monitoring_rules import RECORDS_PER_GROUP, RULES_PER_GROUP
from tools.alertmanager_config import write_alertmanager_config
from tools.offline import StackRun, run_stack, stack_plan
from tools.validate import load_crd_schemas

STACK = "staging"
#: Staging runs one Redis server: the alerts of a replicated Redis are not among its rules.
SENTINEL = {("RedisSentinelNoQuorum", "critical"), ("RedisReplicaUnhealthy", "warning")}


def observability_program(stack: str) -> Callable[[], None]:
    """The Observability component on its own, behind a namespace, as the composition root hands it over."""

    def program() -> None:
        args = observability_args(stack_plan(stack))
        prerequisite = k8s.core.v1.Namespace("namespace", metadata={"name": args.namespace})
        Observability("codai", args, pulumi.ResourceOptions(depends_on=[prerequisite]))

    return program


@pytest.fixture(scope="module")
def plan() -> StackPlan:
    return stack_plan(STACK)


@pytest.fixture(scope="module")
def run() -> StackRun:
    return run_stack(STACK, config={}, program=observability_program(STACK))


@pytest.fixture(scope="module")
def objects(run: StackRun) -> list[dict[str, Any]]:
    return [obj for obj in run.kubernetes_objects() if obj["kind"] != "Namespace"]


def test_one_component_parents_every_object_and_names_them_after_itself(run):
    (component,) = [r for r in run.resources if r.type == TYPE_TOKEN]
    (namespace,) = [r for r in run.resources if r.type == "kubernetes:core/v1:Namespace"]
    children = [r for r in run.resources if r.parent == component.urn]
    assert len(children) == len(run.resources) - 2
    assert all(r.name.startswith("codai-") for r in children)
    assert all(namespace.urn in r.depends_on for r in children)  # created after the namespace


def test_objects_per_kind(objects):
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == ["AlertmanagerConfig", *["ConfigMap"] * 4, *["PrometheusRule"] * 4]


def test_every_object_is_named_and_namespaced_and_labelled(objects, plan):
    namespace = plan.settings.environment.namespace
    monitoring = plan.settings.monitoring
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == namespace and meta["name"].startswith("codai-")
        assert meta["labels"][TIER_LABEL] == PLATFORM_TIER
        assert meta["labels"]["app.kubernetes.io/name"] == "codai-monitoring"
        if obj["kind"] == "ConfigMap":
            assert meta["labels"].items() >= monitoring.grafana.dashboard_labels.items()
            assert meta["annotations"][monitoring.grafana.folder_annotation] == monitoring.grafana.folder
        else:  # found by the operator's rule and config selectors
            assert meta["labels"].items() >= monitoring.selector_labels.items()


def test_custom_resources_carry_what_the_builders_return(objects, plan):
    """The component hands the builders' output over unchanged (what the builders return is tested, with
    written-out expectations, in test_monitoring_rules.py and test_monitoring_alertmanager.py)."""
    rules = {obj["metadata"]["name"]: obj["spec"] for obj in objects if obj["kind"] == "PrometheusRule"}
    assert rules == {f"codai-alerts-{key}": {"groups": [group]}
                     for key, group in rule_groups(observability_args(plan)).items()}
    # and what it hands over is the staging stack's: one group per tier and the data tier, each its recorded
    # signals and its alerts
    assert {name: [(g["name"], [r["record"] if "record" in r else (r["alert"], r["labels"]["severity"])
                                for r in g["rules"]]) for g in spec["groups"]]
            for name, spec in rules.items()} == {
        f"codai-alerts-{key}": [(f"codai.{key}", [*RECORDS_PER_GROUP[key], *(a for a in alerts if a not in SENTINEL)])]
        for key, alerts in RULES_PER_GROUP.items()}
    assert {r["labels"]["namespace"] for spec in rules.values() for g in spec["groups"] for r in g["rules"]
            if "alert" in r} == {
        "codai-staging"}
    (config,) = [obj for obj in objects if obj["kind"] == "AlertmanagerConfig"]
    assert config["spec"] == alertmanager_config_spec(plan.settings.monitoring.alertmanager)
    assert config["metadata"]["name"] == "codai-alertmanager"
    assert {r["matchers"][0]["value"]: r["receiver"] for r in config["spec"]["route"]["routes"]} == {
        "critical": "pagerduty", "warning": "slack", "info": "digest"}


def test_custom_resources_are_valid_for_their_crds(objects):
    schemas = load_crd_schemas()
    custom = [obj for obj in objects if (obj["apiVersion"], obj["kind"]) in (PROMETHEUS_RULE, ALERTMANAGER_CONFIG)]
    assert len(custom) == 5
    for obj in custom:
        validator = jsonschema.Draft7Validator(schemas[(obj["apiVersion"], obj["kind"])])
        assert [error.message for error in validator.iter_errors(obj)] == [], obj["metadata"]["name"]


@pytest.mark.parametrize("version", ["1.30", "1.34"])
def test_dashboard_config_maps_are_valid_kubernetes(objects, version):
    config_maps = [obj for obj in objects if obj["kind"] == "ConfigMap"]
    for obj in config_maps:
        kubernetes_validate.validate(obj, version, strict=True)
        (document,) = obj["data"].values()
        dashboard = json.loads(document)
        assert dashboard["uid"].startswith("codai-staging-")
    assert sorted(obj["metadata"]["name"] for obj in config_maps) == [
        "codai-dashboard-business", "codai-dashboard-core", "codai-dashboard-overview", "codai-dashboard-support"]


def test_the_crd_check_rejects_a_misspelt_rule_field(objects):
    schemas = load_crd_schemas()
    rule = json.loads(json.dumps(next(obj for obj in objects if obj["kind"] == "PrometheusRule")))
    alert = next(r for r in rule["spec"]["groups"][0]["rules"] if "alert" in r)
    alert["fore"] = alert.pop("for")
    errors = [error.message for error in jsonschema.Draft7Validator(schemas[PROMETHEUS_RULE]).iter_errors(rule)]
    assert errors == ["Additional properties are not allowed ('fore' was unexpected)"]


@pytest.mark.realtool
def test_the_rendered_alertmanager_config_becomes_an_alertmanager_yml_amtool_accepts(run, tmp_path):
    amtool = require_tool("amtool")
    path = write_alertmanager_config(run, tmp_path)
    assert path == tmp_path / STACK / "alertmanager.yml"
    native = yaml.safe_load(path.read_text())
    assert native["route"]["routes"][0]["receiver"].startswith("codai-staging/codai-alertmanager/")
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
