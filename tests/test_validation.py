"""Every rendered object is valid for Kubernetes and its CRDs, and objects reference each other correctly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import SHARED, require_path
from tools.validate import close_schema, connectivity, declared_calls, lint, load_crd_schemas, schema_errors

VERSIONS = ["1.30", "1.34"]  # environment.kubernetes defaults: oldest and newest supported


@pytest.fixture(scope="session")
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    return load_crd_schemas(require_path(SHARED / "crds", "upstream CRDs"))


def test_every_object_is_valid_in_the_oldest_and_newest_kubernetes(any_stack, crd_schemas):
    objects = any_stack.kubernetes_objects()
    errors, builtin, custom = schema_errors(objects, VERSIONS, crd_schemas)
    assert errors == []
    assert builtin + custom == len(objects) and custom >= 29


def test_lint_finds_nothing_in_the_real_stacks(any_stack):
    assert lint(any_stack.kubernetes_objects()) == []


def test_crd_schemas_cover_the_kinds_we_render(crd_schemas):
    assert ("monitoring.coreos.com/v1", "ServiceMonitor") in crd_schemas
    assert ("monitoring.coreos.com/v1", "PrometheusRule") in crd_schemas
    assert ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig") in crd_schemas
    assert ("cert-manager.io/v1", "Certificate") in crd_schemas


def test_unknown_fields_are_errors_in_builtin_and_custom_kinds(staging, crd_schemas):
    deployment = copy.deepcopy(staging.get("Deployment", "codai"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    monitor = copy.deepcopy(staging.get("ServiceMonitor", "codai"))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    errors, _, _ = schema_errors([deployment, monitor], ["1.30"], crd_schemas)
    assert any("Deployment/codai" in e and "imagePullPolicyy" in e for e in errors), errors
    assert any("ServiceMonitor/codai" in e and "intervall" in e for e in errors), errors


def test_wrong_types_are_errors(staging, crd_schemas):
    hpa = copy.deepcopy(staging.get("HorizontalPodAutoscaler", "codai"))
    hpa["spec"]["minReplicas"] = "two"
    monitor = copy.deepcopy(staging.get("ServiceMonitor", "codai"))
    monitor["spec"]["endpoints"][0]["scheme"] = "gopher"
    errors, _, _ = schema_errors([hpa, monitor], ["1.34"], crd_schemas)
    assert len(errors) == 2, errors


def test_close_schema_forbids_unlisted_fields_only_where_properties_are_listed():
    schema = close_schema({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}},
                                                            "free": {"type": "object",
                                                                     "x-kubernetes-preserve-unknown-fields": True}}})
    assert schema["additionalProperties"] is False
    assert schema["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["free"]


# --- each lint rule, fed a broken object set ------------------------------------------------


def broken(run: Any, kind: str, name: str, change: Any) -> list[str]:
    objects = copy.deepcopy(run.kubernetes_objects())
    target = next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)
    change(target)
    return lint(objects)


def test_lint_service_selector_matching_no_pod(staging):
    errors = broken(staging, "Service", "wallet", lambda s: s["spec"]["selector"].update({"codai.io/track": "gone"}))
    assert len(errors) == 1 and errors[0].startswith("Service/wallet: selector {")
    assert errors[0].endswith("'codai.io/track': 'gone'} matches no pod")


def test_lint_target_port_not_exposed(staging):
    errors = broken(staging, "Service", "wallet", lambda s: s["spec"]["ports"][0].update({"targetPort": "web"}))
    assert any("Service/wallet: targetPort 'web' is not a port of Deployment/wallet" in e for e in errors), errors


def test_lint_hpa_pointing_at_nothing(staging):
    errors = broken(staging, "HorizontalPodAutoscaler", "x",
                    lambda h: h["spec"]["scaleTargetRef"].update({"name": "y"}))
    assert errors == ["HorizontalPodAutoscaler/x: scaleTargetRef Deployment/y is not rendered"]


def test_lint_pdb_and_network_policy_selecting_nothing(staging):
    errors = broken(staging, "PodDisruptionBudget", "docs",
                    lambda p: p["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "doc"}))
    assert errors == ["PodDisruptionBudget/docs: selector matches no pod"]
    errors = broken(staging, "NetworkPolicy", "docs",
                    lambda p: p["spec"]["podSelector"]["matchLabels"].update({"app.kubernetes.io/name": "doc"}))
    assert errors == ["NetworkPolicy/docs: podSelector matches no pod"]


def test_lint_ingress_to_missing_service_or_port(staging):
    def to_missing_service(ingress: dict[str, Any]) -> None:
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "nobody"

    def to_missing_port(ingress: dict[str, Any]) -> None:
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"name": "grpc"}

    assert broken(staging, "Ingress", "hub", to_missing_service) == \
        ["Ingress/hub: backend Service nobody is not rendered"]
    assert broken(staging, "Ingress", "hub", to_missing_port) == ["Ingress/hub: Service hub has no port 'grpc'"]


def test_lint_missing_config_map_secret_and_service_account(staging):
    objects = [o for o in copy.deepcopy(staging.kubernetes_objects())
               if (o["kind"], o["metadata"]["name"]) not in {("ConfigMap", "logai-config"),
                                                             ("Secret", "logai-app-secrets"),
                                                             ("ServiceAccount", "logai")}]
    assert sorted(lint(objects)) == [
        "Deployment/logai: ServiceAccount logai is not rendered",
        "Deployment/logai: envFrom ConfigMap logai-config is not rendered",
        "Deployment/logai: envFrom Secret logai-app-secrets is not rendered",
    ]


def test_lint_service_monitor_on_a_port_no_service_has(staging):
    errors = broken(staging, "ServiceMonitor", "kodex", lambda m: m["spec"]["endpoints"][0].update({"port": "prom"}))
    assert errors == ["ServiceMonitor/kodex: no selected Service has a port named 'prom'"]


def test_every_declared_call_passes_both_network_policies(any_stack):
    calls = declared_calls()
    assert ("stocai", "wallet") in calls and len(calls) > 40
    assert connectivity(any_stack.kubernetes_objects(), calls) == []


def test_a_policy_cutting_a_declared_call_is_reported(staging):
    objects = copy.deepcopy(staging.kubernetes_objects())
    wallet = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "wallet")
    wallet["spec"]["ingress"] = [r for r in wallet["spec"]["ingress"] if "namespaceSelector" in r["from"][0]]
    stocai = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "stocai")
    stocai["spec"]["egress"] = [r for r in stocai["spec"]["egress"]
                                if r.get("to", [{}])[0].get("podSelector", {}).get("matchLabels", {})
                                .get("app.kubernetes.io/name") != "wallet"]
    errors = connectivity(objects, [("stocai", "wallet"), ("bancai", "wallet")])
    assert errors == [
        "NetworkPolicy: stocai may call wallet (catalog) but its egress does not allow it",
        "NetworkPolicy: stocai may call wallet (catalog) but wallet's ingress refuses it",
        "NetworkPolicy: bancai may call wallet (catalog) but wallet's ingress refuses it",
    ]
