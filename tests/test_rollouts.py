"""Rollout strategies and feature flags: what each renders, and what a switch changes (only that)."""

from __future__ import annotations

import functools

import pytest

from settings import SettingsError
from tests.conftest import run_with, stack_run
from tools.offline import StackRun
from tools.validate import connectivity, declared_calls, lint, load_crd_schemas, made_elsewhere, schema_errors

CANARY_TAG = "2024.12.2"


def changes(before: StackRun, after: StackRun) -> tuple[set[str], set[str], set[str]]:
    """(added, removed, changed) URNs between two runs."""
    old = {r.urn: r.inputs for r in before.resources}
    new = {r.urn: r.inputs for r in after.resources}
    changed = {urn for urn in old.keys() & new.keys() if old[urn] != new[urn]}
    return new.keys() - old.keys(), old.keys() - new.keys(), changed


def kind_and_name(run: StackRun, urns: set[str]) -> set[tuple[str, str]]:
    return {(r.inputs["kind"], r.inputs["metadata"]["name"])
            for r in run.resources if r.urn in urns and r.is_kubernetes}


def image(run: StackRun, deployment: str) -> str:
    return str(run.get("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture(scope="module", params=["staging", "production"])
def canary(request: pytest.FixtureRequest) -> StackRun:
    return run_with(request.param, {"bancai": {"rollout": {
        "strategy": "canary", "canary": {"image": {"tag": CANARY_TAG}, "weight": 20}}}})


def test_rolling_is_the_default_single_stable_track(staging):
    deployment = staging.get("Deployment", "bancai")
    assert deployment["spec"]["selector"]["matchLabels"]["codai.io/track"] == "stable"
    assert staging.get("Service", "bancai")["spec"]["selector"]["codai.io/track"] == "stable"
    with pytest.raises(KeyError):
        staging.get("Deployment", "bancai-canary")


def test_canary_runs_beside_stable_with_weighted_ingress(canary):
    assert image(canary, "bancai").endswith(":2024.12.1")
    assert image(canary, "bancai-canary").endswith(f":{CANARY_TAG}")
    spec = canary.get("Deployment", "bancai-canary")["spec"]
    assert spec["replicas"] == 1 and spec["selector"]["matchLabels"]["codai.io/track"] == "canary"
    assert canary.get("Service", "bancai")["spec"]["selector"]["codai.io/track"] == "stable"
    assert canary.get("Service", "bancai-canary")["spec"]["selector"]["codai.io/track"] == "canary"
    ingress = canary.get("Ingress", "bancai-canary")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "20"
    main = canary.get("Ingress", "bancai")
    assert ingress["spec"]["rules"][0]["host"] == main["spec"]["rules"][0]["host"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "bancai-canary"
    assert canary.get("HorizontalPodAutoscaler", "bancai")["spec"]["scaleTargetRef"]["name"] == "bancai"
    # Its metrics carry the track, under the service's job: dashboards and alerts can compare.
    monitor = canary.get("ServiceMonitor", "bancai")["spec"]
    assert monitor["podTargetLabels"] == ["codai.io/track"] and monitor["jobLabel"] == "app.kubernetes.io/name"
    # The service's NetworkPolicy and PDB cover both tracks.
    pod_labels = canary.get("Deployment", "bancai-canary")["spec"]["template"]["metadata"]["labels"]
    selector = canary.get("NetworkPolicy", "bancai")["spec"]["podSelector"]["matchLabels"]
    assert all(pod_labels[k] == v for k, v in selector.items())


def test_adding_a_canary_changes_no_existing_resource(canary):
    added, removed, changed = changes(stack_run(canary.stack), canary)
    assert not removed
    assert kind_and_name(canary, added) == {("Deployment", "bancai-canary"), ("Service", "bancai-canary"),
                                            ("Ingress", "bancai-canary")}
    # Only the tier's alert rules change, to watch the canary's rollout as well; no pod restarts.
    assert kind_and_name(canary, changed) == {("PrometheusRule", "codai-alerts-business")}
    assert "bancai-canary" in str(canary.get("PrometheusRule", "codai-alerts-business")["spec"])


def test_promoting_a_canary_changes_only_the_stable_image(canary):
    promoted = run_with(canary.stack, {"bancai": {"image": {"tag": CANARY_TAG}}})
    added, removed, changed = changes(canary, promoted)
    assert not added
    assert kind_and_name(canary, removed) == {("Deployment", "bancai-canary"), ("Service", "bancai-canary"),
                                              ("Ingress", "bancai-canary")}
    assert kind_and_name(promoted, changed) == {("Deployment", "bancai"), ("PrometheusRule", "codai-alerts-business")}
    assert "bancai-canary" not in str(promoted.get("PrometheusRule", "codai-alerts-business")["spec"])
    assert image(promoted, "bancai").endswith(f":{CANARY_TAG}")


@functools.cache
def blue_green(stack: str, active: str) -> StackRun:
    return run_with(stack, {"wallet": {"rollout": {"strategy": "blueGreen", "blueGreen": {
        "active": active, "blue": {"tag": "2024.12.1"}, "green": {"tag": "2024.12.2"}}}}})


def test_blue_green_serves_the_active_colour_and_previews_the_other():
    run = blue_green("production", "blue")
    assert image(run, "wallet-blue").endswith(":2024.12.1") and image(run, "wallet-green").endswith(":2024.12.2")
    assert run.get("Service", "wallet")["spec"]["selector"]["codai.io/track"] == "blue"
    assert run.get("Service", "wallet-preview")["spec"]["selector"]["codai.io/track"] == "green"
    assert run.get("HorizontalPodAutoscaler", "wallet")["spec"]["scaleTargetRef"]["name"] == "wallet-blue"
    # The idle colour stays at the floor (production's business tier: 2), so switching back is instant.
    assert run.get("HorizontalPodAutoscaler", "wallet")["spec"]["minReplicas"] == 2
    assert run.get("Deployment", "wallet-green")["spec"]["replicas"] == 2


def test_switching_colour_is_one_change_that_restarts_nothing():
    blue, green = blue_green("production", "blue"), blue_green("production", "green")
    added, removed, changed = changes(blue, green)
    assert not added and not removed
    assert kind_and_name(green, changed) == {("Service", "wallet"), ("Service", "wallet-preview"),
                                             ("HorizontalPodAutoscaler", "wallet")}
    assert green.get("Service", "wallet")["spec"]["selector"]["codai.io/track"] == "green"


def test_feature_flag_change_rolls_the_pods_and_nothing_else(staging):
    flagged = run_with("staging", {"cumparai": {"featureFlags": {"newCheckout": True, "maxCartItems": 50}}})
    added, removed, changed = changes(staging, flagged)
    assert not added and not removed
    assert kind_and_name(flagged, changed) == {("ConfigMap", "cumparai-config"), ("Deployment", "cumparai")}
    data = flagged.get("ConfigMap", "cumparai-config")["data"]
    assert data["FEATURE_NEW_CHECKOUT"] == "true" and data["FEATURE_MAX_CART_ITEMS"] == "50"
    before = staging.get("Deployment", "cumparai")["spec"]["template"]
    after = flagged.get("Deployment", "cumparai")["spec"]["template"]
    assert before["metadata"]["annotations"] != after["metadata"]["annotations"]
    assert before["spec"] == after["spec"]  # only the checksum moved


@pytest.mark.parametrize(("overrides", "path", "message"), [
    ({"memorai": {"rollout": {"strategy": "canary", "canary": {"image": {"tag": "1.0"}}}}},
     "services.memorai.rollout.strategy", "needs a public service"),
    ({"bancai": {"rollout": {"strategy": "canary"}}}, "services.bancai.rollout", "needs a `canary` block"),
    ({"bancai": {"rollout": {"strategy": "canary", "canary": {}}}}, "services.bancai.rollout.canary.image",
     "required key is missing"),
    ({"bancai": {"rollout": {"strategy": "canary", "canary": {"image": {}}}}}, "services.bancai.rollout.canary",
     "needs image.tag or image.digest"),
    ({"bancai": {"rollout": {"strategy": "canary", "canary": {"image": {"tag": "1"}, "weight": 120}}}},
     "services.bancai.rollout.canary.weight", "less than or equal to 100"),
    ({"bancai": {"rollout": {"blueGreen": {"active": "blue"}}}}, "services.bancai.rollout",
     "`blueGreen` is set but strategy is rolling"),
    ({"bancai": {"rollout": {"strategy": "blueGreen", "blueGreen": {"active": "red"}}}},
     "services.bancai.rollout.blueGreen.active", "'blue' or 'green'"),
    ({"bancai": {"featureFlags": {"new-checkout": True}}}, "services.bancai.featureFlags", "lowerCamelCase"),
])
def test_bad_rollout_settings_are_rejected(overrides, path, message):
    with pytest.raises(SettingsError) as caught:
        run_with("staging", overrides)
    assert any(where == path and message in text for where, text in caught.value.problems), caught.value.problems


def test_canaries_count_against_the_quota():
    big = {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}
    run_with("staging", {"codai": big})  # fits without a canary
    with pytest.raises(SettingsError, match="cannot hold every service"):
        run_with("staging", {"codai": {**big, "rollout": {"strategy": "canary", "canary": {
            "image": {"tag": "2"}, "replicas": 10}}}})


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_every_strategy_and_flags_validate_in_both_stacks(stack):
    crds = load_crd_schemas()
    run = run_with(stack, {
        "bancai": {"rollout": {"strategy": "canary", "canary": {"image": {"tag": CANARY_TAG}}}},
        "wallet": {"rollout": {"strategy": "blueGreen", "blueGreen": {"active": "green", "green": {"tag": "2"}}}},
        "cumparai": {"featureFlags": {"newCheckout": True}},
    })
    objects = run.kubernetes_objects()
    errors, _, _ = schema_errors(objects, ["1.30", "1.34"], crds)
    assert errors == []
    assert lint(objects, made_elsewhere(stack)) == []
    assert connectivity(objects, declared_calls()) == []
    deployments = {o["metadata"]["name"] for o in run.of_kind("Deployment")}
    assert {"bancai-canary", "wallet-blue", "wallet-green"} <= deployments
