"""Every setting a stack file can set changes the render, and docs/stacks.md says where.

The leaves come from the settings models (tests/settings_leaves.py), so a new field is covered
the moment it exists: it needs a value (derived, or in EXPLICIT of tests/leaf_values.py), a context if it lives in an
optional block, an effect on the rendered objects, and its row in the doc
(`.venv/bin/python -m tests.settings_leaves --write-doc`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from settings.base import SettingsModel
from settings.loader import load_settings
from settings.stack import StackSettings
from tests import render_diff as rd
from tests import settings_leaves as sl
from tools import validate

LEAVES = sl.leaves()
KEYS = [leaf.key for leaf in LEAVES]


@pytest.fixture(scope="module")
def variants() -> list[sl.Variant]:
    return [sl.variant(leaf) for leaf in LEAVES]


def _wanted(items: list[pytest.Item]) -> set[str]:
    """The leaves the selected tests of this module look at: a test parametrized by ``key`` needs that leaf,
    any other test that reads ``observed`` needs them all. (``make mutants`` runs single rows, in seconds.)"""
    wanted: set[str] = set()
    for item in items:
        if not isinstance(item, pytest.Function) or item.module is None or item.module.__name__ != __name__:
            continue
        if "observed" not in item.fixturenames:
            continue
        params = getattr(item, "callspec", None)
        if params is None or "key" not in params.params:
            return set(KEYS)
        wanted.add(params.params["key"])
    return wanted


@pytest.fixture(scope="module")
def observed(request: pytest.FixtureRequest, variants: list[sl.Variant]) -> dict[str, list[str]]:
    """Each selected leaf's changes: one render per leaf plus one per context, in worker processes."""
    wanted = _wanted(request.session.items)
    started = time.monotonic()
    found = sl.observe_all([v for v in variants if v.leaf in wanted])
    print(f"\n{len(found)} leaves rendered in {time.monotonic() - started:.0f} s")
    return found


def test_the_leaves_come_from_every_part_of_the_schema() -> None:
    expected = {
        "environment.tls.clusterIssuer", "environment.rbac.viewers[0].kind", "environment.kubernetes.maxVersion",
        "tiers.core.autoscaling.targetCpuUtilization", "tiers.support.resources.limits.memory",
        f"services.{sl.SERVICE}.rollout.canary.weight", f"services.{sl.SERVICE}.env",
        "monitoring.alerts.latencyP95Seconds.business", "monitoring.alertmanager.slack.channel",
        "postgres.backup.objectStore.url", "postgres.external.tlsMode", "redis.external.disableDefaultUser",
    }
    assert expected <= set(KEYS)
    assert len(KEYS) == len(set(KEYS))


def test_a_new_field_joins_the_list_by_itself() -> None:
    class Extra(SettingsModel):
        knob: int = 1
        nested: StackSettings | None = None

    keys = [leaf.key for leaf in sl.walk(Extra)]
    assert keys[0] == "knob"
    assert "nested.postgres.backup.keep" in keys and "nested.tiers.business.replicas.max" in keys


def test_each_variant_is_valid_and_differs_from_its_context(variants: list[sl.Variant]) -> None:
    for v in variants:
        load_settings(sl.BASE_STACK, v.values)
        assert v.values != sl.context_values(v.context), v.leaf


@pytest.mark.parametrize("key", KEYS)
def test_every_setting_changes_the_render(key: str, observed: dict[str, list[str]]) -> None:
    if key in sl.NOT_RENDERED:
        assert not observed[key], f"{key} now changes objects: drop it from NOT_RENDERED"
        return
    assert observed[key], (f"{key}: changing it alters no rendered object: wire it or remove it "
                           "(or, if its effect is outside the objects, list it in NOT_RENDERED with a test)")


REGENERATE = ("fix the code, or after a deliberate change run "
              "`.venv/bin/python -m tests.settings_leaves --write-doc`")


def test_docs_stacks_md_has_a_row_for_every_setting_in_order() -> None:
    assert list(sl.doc_rows(sl.STACKS_DOC.read_text())) == KEYS, f"docs/stacks.md's settings table: {REGENERATE}"


@pytest.mark.parametrize("key", KEYS)
def test_docs_stacks_md_says_what_the_setting_changes(
        key: str, variants: list[sl.Variant], observed: dict[str, list[str]]) -> None:
    [v] = [v for v in variants if v.leaf == key]
    written = sl.doc_rows(sl.STACKS_DOC.read_text()).get(key)
    assert written == sl.row(v, observed[key]), f"docs/stacks.md differs from what {key} changes: {REGENERATE}"


def _only(observed: dict[str, list[str]], key: str) -> list[str]:
    return rd.summary(observed[key])


def test_a_tier_target_changes_only_the_hpa_metric(observed: dict[str, list[str]]) -> None:
    for tier in ("core", "business", "support"):
        for target in ("targetCpuUtilization", "targetMemoryUtilization"):
            assert _only(observed, f"tiers.{tier}.autoscaling.{target}") == [
                "HorizontalPodAutoscaler:spec.metrics[].resource.target.averageUtilization"]


@pytest.mark.parametrize(("key", "alert"), [
    ("cpuWarning", "CpuSaturation/warning"), ("cpuCritical", "CpuSaturation/critical"),
    ("memoryWarning", "MemorySaturation/warning"), ("memoryCritical", "MemorySaturation/critical"),
    ("diskCritical", "DiskSaturation/critical"),
])
def test_thresholds_with_the_same_default_each_move_only_their_own_alert(
        key: str, alert: str, observed: dict[str, list[str]]) -> None:
    """cpuWarning and memoryWarning share 0.8, the criticals and diskCritical 0.9: a mix-up shows here."""
    rules = [entry for entry in observed[f"monitoring.alerts.{key}"] if entry.startswith("PrometheusRule:")]
    assert rules, key
    touched = {entry.split(".rules[", 1)[1].split("]", 1)[0] for entry in rules}
    assert touched == {alert}, f"{key} changed {sorted(touched)}"
    assert any(entry.endswith("].expr") for entry in rules), rules


def test_max_version_is_the_newest_kubernetes_the_objects_are_validated_against(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """environment.kubernetes.maxVersion renders nothing: tools/validate.py validates against it."""
    values: dict[str, Any] = sl.with_value(sl.context_values(""), ("environment", "kubernetes", "maxVersion"), "1.33")
    monkeypatch.setattr(validate, "stack_plan", lambda stack: load_settings(stack, values))
    assert validate.kubernetes_versions(sl.BASE_STACK) == ["1.30", "1.33"]


def test_summaries_merge_list_keys_and_cut_long_lists() -> None:
    found = [f"PrometheusRule:spec.groups[codai.{tier}].rules[CpuSaturation/warning].expr"
             for tier in ("core", "data")] + ["PrometheusRule:spec.groups[codai.data].rules[X].for"]
    assert rd.summary(found) == ["PrometheusRule:spec.groups[*].rules[CpuSaturation/warning].expr",
                                 "PrometheusRule:spec.groups[codai.data].rules[X].for"]
    many = [f"Kind{n}:spec.a.b.c" for n in range(rd.MAX_PATHS + 1)]
    assert rd.summary(many) == sorted(f"Kind{n}" for n in range(rd.MAX_PATHS + 1))
