"""URNs are a contract: a changed URN replaces the resource on the next `pulumi up`."""

from __future__ import annotations

import copy
import dataclasses
import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.platform import CodaiPlatform, PlatformArgs
from services.catalog import SERVICES, Catalog
from services.model import ServiceSpec
from services.tiers import Tier
from settings.loader import load_settings
from settings.pulumi_config import read_project_config
from tools.offline import ROOT, Registered, StackRun, run_stack
from tools.urns import (
    UPDATE_COMMAND,
    Difference,
    compare,
    duplicate_urns,
    protection_problems,
    snapshot_lines,
    snapshot_message,
    unnamed_objects,
    urns,
)


@functools.cache
def run_with_catalog(stack: str, services: tuple[ServiceSpec, ...]) -> StackRun:
    """The platform over ``services`` (the catalog reordered or grown), built in-process under the mocks."""
    catalog = Catalog(services)

    def program() -> None:
        settings = load_settings(pulumi.get_stack(), read_project_config(), catalog)
        CodaiPlatform("codai", PlatformArgs(plan=settings, catalog=catalog))

    return run_stack(stack, program=program)


def test_urns_match_the_committed_snapshot(any_stack):
    found = compare(any_stack.stack, snapshot_lines(any_stack))
    assert not found, snapshot_message(any_stack.stack, found)


def edited(run: StackRun, kind: str, name: str, change: Callable[[dict[str, Any]], Any]) -> StackRun:
    """``run`` with one object's inputs changed (same URN)."""
    target = run.resource(kind, name)
    inputs = copy.deepcopy(target.inputs)
    change(inputs)
    resources = [dataclasses.replace(r, inputs=inputs) if r is target else r for r in run.resources]
    return StackRun(run.stack, resources, run.outputs)


def test_a_rename_or_a_new_selector_under_the_same_urn_is_a_replacement(staging):
    def rename(inputs: dict[str, Any]) -> None:
        inputs["metadata"]["name"] = "wallet-v2"

    def reselect(inputs: dict[str, Any]) -> None:
        inputs["spec"]["selector"]["matchLabels"]["app.kubernetes.io/version"] = "2"

    for change, field in ((rename, "name=codai-staging/wallet-v2"), (reselect, "app.kubernetes.io/version=2")):
        found = compare("staging", snapshot_lines(edited(staging, "Deployment", "wallet", change)))
        assert (found.added, found.removed) == ([], [])
        [(urn, before, after)] = found.replaced
        assert urn == staging.resource("Deployment", "wallet").urn and field in after and field not in before
        assert f"  ~ {urn}" in snapshot_message("staging", found)


def test_the_snapshot_message_names_each_urn_and_the_command():
    message = snapshot_message("staging", Difference(["urn:new"], ["urn:old"], [("urn:same", "a", "b")]))
    assert "  + urn:new" in message and "  - urn:old" in message and "  ~ urn:same" in message
    assert "was: a" in message and "now: b" in message
    assert UPDATE_COMMAND in message and "aliases=" in message


def test_the_explicit_catalog_program_registers_what_the_real_program_does(staging):
    assert set(urns(run_with_catalog("staging", SERVICES))) <= set(urns(staging))


def test_shuffling_the_catalog_changes_no_urn():
    baseline = run_with_catalog("staging", SERVICES)
    shuffled = run_with_catalog("staging", tuple(random.Random(29).sample(SERVICES, len(SERVICES))))
    assert [r.name for r in shuffled.resources] != [r.name for r in baseline.resources]  # really reordered
    assert urns(shuffled) == urns(baseline)


def test_adding_a_service_changes_no_existing_urn():
    baseline = run_with_catalog("staging", SERVICES)
    grown = run_with_catalog("staging", (*SERVICES, ServiceSpec(name="newai", tier=Tier.SUPPORT,
                                                                    description="A new service", callers=("hub",))))
    before, after = set(urns(baseline)), set(urns(grown))
    assert before <= after
    added = after - before
    assert added and all(urn.rsplit("::", 1)[1].startswith("newai") for urn in added), sorted(added)


def test_every_urn_is_unique(any_stack):
    assert duplicate_urns(any_stack) == []


def test_a_repeated_urn_is_found(staging):
    repeated = StackRun("staging", [*staging.resources, staging.resources[-1]], {})
    assert duplicate_urns(repeated) == [staging.resources[-1].urn]


def test_every_object_has_a_name_and_every_namespaced_object_a_namespace(any_stack):
    assert unnamed_objects(any_stack) == []
    config_map = any_stack.resource("ConfigMap", "codai-config")
    nameless = Registered(config_map.urn, config_map.type, config_map.name, True, config_map.parent,
                          {**config_map.inputs, "metadata": {"name": "codai-config"}})
    assert unnamed_objects(StackRun("staging", [nameless], {})) == [
        f"{config_map.urn}: ConfigMap without metadata.namespace"]


def test_the_namespace_and_stateful_resources_are_protected_in_production_and_retained_everywhere(any_stack):
    assert protection_problems(any_stack) == []
    namespace = any_stack.resource("Namespace", any_stack.outputs["namespace"])
    assert namespace.retain_on_delete and namespace.protect == (any_stack.stack == "production")


UNPROTECTED = "protect is not set in production, whose settings protect its data"


def test_protection_follows_the_settings_whatever_the_stack_is_called(tmp_path: Path):
    """A stack named anything but `production` that protects its data is held to it; staging is not."""
    (tmp_path / "Pulumi.eu.yaml").write_text((ROOT / "Pulumi.production.yaml").read_text())
    (tmp_path / "Pulumi.production.yaml").write_text((ROOT / "Pulumi.staging.yaml").read_text())
    statefulset = Registered("urn:pulumi:eu::codai-platform::kubernetes:apps/v1:StatefulSet::db",
                             "kubernetes:apps/v1:StatefulSet", "db", True, "",
                             {"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {}})
    assert protection_problems(StackRun("eu", [statefulset], {}), tmp_path) == [
        f"{statefulset.urn}: protect is not set in eu, whose settings protect its data"]
    assert protection_problems(StackRun("production", [statefulset], {}), tmp_path) == []


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_an_unguarded_stateful_resource_is_found(stack):
    def registered(type_: str, kind: str, spec: dict[str, Any], protect: bool = False,
                   retain_on_delete: bool = False) -> Registered:
        return Registered(f"urn:pulumi:{stack}::codai-platform::{type_}::db", type_, "db", True, "",
                          {"kind": kind, "metadata": {"name": "db", "namespace": "codai"}, "spec": spec},
                          protect=protect, retain_on_delete=retain_on_delete)

    claims: dict[str, Any] = {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    kept = {**claims, "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}
    run = StackRun(stack, [
        registered("kubernetes:apps/v1:StatefulSet", "StatefulSet", claims),
        registered("kubernetes:core/v1:PersistentVolumeClaim", "PersistentVolumeClaim", {}),
        registered("kubernetes:core/v1:PersistentVolumeClaim", "PersistentVolumeClaim", {}, retain_on_delete=True,
                   protect=True),
        registered("kubernetes:apps/v1:StatefulSet", "StatefulSet", kept, protect=True),
        registered("kubernetes:apps/v1:Deployment", "Deployment", {}),  # stateless: nothing asked
    ], {})
    problems = protection_problems(run)
    expected = ["kubernetes:core/v1:PersistentVolumeClaim::db: retain_on_delete is not set",
                "kubernetes:apps/v1:StatefulSet::db: its volume claims are not kept when it is deleted"]
    if stack == "production":
        expected += [f"kubernetes:apps/v1:StatefulSet::db: {UNPROTECTED}",
                     f"kubernetes:core/v1:PersistentVolumeClaim::db: {UNPROTECTED}"]
    assert [p.split("::", 2)[2] for p in problems] == expected


def test_urns_carry_the_whole_parent_type_chain_as_the_engine_makes_them(staging):
    cluster = staging.resource("Cluster", "postgres-cluster")
    assert cluster.urn == ("urn:pulumi:staging::codai-platform::codai:platform:Platform$codai:data:Postgres"
                           "$kubernetes:postgresql.cnpg.io/v1:Cluster::postgres-cluster")
    deployment = staging.resource("Deployment", "wallet")
    assert deployment.urn.split("::")[2] == ("codai:platform:Platform$codai:platform:BusinessTier"
                                             "$codai:platform:Service$kubernetes:apps/v1:Deployment")
    # Each URN extends its parent's; the root stack is left out, as the engine does.
    by_urn = {r.urn: r for r in staging.resources}
    for resource in staging.resources:
        qualified_type = resource.urn.split("::")[2]
        if resource.parent in by_urn:
            assert qualified_type == f"{by_urn[resource.parent].urn.split('::')[2]}${resource.type}"
        else:
            assert qualified_type == resource.type and "pulumi:pulumi:Stack" not in resource.urn
