"""The policy pack, exercised without the CLI: the real stacks pass, each broken variant is reported.

Props are handed over as the engine hands them: read-only proxies that raise on unknown values.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policy.codai_policies import POLICIES, image_is_pinned
from tests.conftest import ROOT
from tools.offline import Registered, StackRun

Props = dict[str, Any]
Edit = Callable[[list[tuple[Registered, Props]]], None]


def _options(resource: Registered) -> PolicyResourceOptions:
    return PolicyResourceOptions(resource.protect, resource.ignore_changes, resource.delete_before_replace,
                                 resource.aliases, PolicyCustomTimeouts(0, 0, 0), [], resource.parent)


def violations(run: StackRun, edit: Edit | None = None, only: str | None = None,
               config: Mapping[str, Any] | None = None) -> list[str]:
    """Every violation the pack reports for a run; ``edit(resources)`` may change props first."""
    resources = [(r, copy.deepcopy(r.manifest())) for r in run.resources if r.is_kubernetes]
    if edit:
        edit(resources)
    found: list[str] = []
    for policy in POLICIES:
        if only and policy.name != only:
            continue

        def report(message: str, urn: str | None = None, policy_name: str = policy.name) -> None:
            found.append(f"{policy_name}: {message}")

        if isinstance(policy, ResourceValidationPolicy):
            for resource, props in resources:
                args = ResourceValidationArgs(resource.type, unknown_checking_proxy(props), resource.urn,
                                              resource.name, _options(resource), None, config)
                policy.validate(args, report)
        elif isinstance(policy, StackValidationPolicy):
            stack = [PolicyResource(r.type, unknown_checking_proxy(props), r.urn, r.name, _options(r), None, None,
                                    [], {}) for r, props in resources]
            policy.validate(StackValidationArgs(stack, config), report)
    return found


def change(kind: str, name: str, fn: Callable[[Props], Any]) -> Edit:
    def edit(resources: list[tuple[Registered, Props]]) -> None:
        for _, props in resources:
            if props["kind"] == kind and props["metadata"]["name"] == name:
                fn(props)
    return edit


def pod(props: Props) -> Props:
    spec: Props = props["spec"]["template"]["spec"]
    return spec


def container(props: Props) -> Props:
    first: Props = pod(props)["containers"][0]
    return first


def test_the_real_stacks_pass_every_policy(any_stack):
    assert violations(any_stack) == []


@pytest.mark.parametrize(("policy", "fn", "message"), [
    ("images-pinned", lambda d: container(d).update(image="ghcr.io/codai/docs:latest"), "is not pinned"),
    ("images-pinned", lambda d: container(d).update(image="ghcr.io/codai/docs"), "is not pinned"),
    ("images-pinned", lambda d: container(d).update(image="registry:5000/codai/docs"), "is not pinned"),
    ("resources-set", lambda d: container(d)["resources"].pop("limits"), "limits missing ['cpu', 'memory']"),
    ("resources-set", lambda d: container(d)["resources"]["limits"].pop("cpu"), "limits missing ['cpu']"),
    ("resources-set", lambda d: container(d)["resources"]["requests"].pop("memory"), "requests missing ['memory']"),
    ("non-root", lambda d: container(d)["securityContext"].update(runAsUser=0), "runs as UID 0"),
    ("non-root", lambda d: (pod(d)["securityContext"].update(runAsUser=0), container(d)["securityContext"].pop(
        "runAsUser")), "runs as UID 0"),
    ("non-root", lambda d: (pod(d)["securityContext"].pop("runAsNonRoot"),
                            container(d)["securityContext"].pop("runAsNonRoot")), "runAsNonRoot is not set"),
    ("no-privilege", lambda d: container(d)["securityContext"].update(privileged=True), "privileged"),
    ("no-privilege", lambda d: container(d)["securityContext"].pop("allowPrivilegeEscalation"),
     "allowPrivilegeEscalation is not false"),
    ("no-privilege", lambda d: container(d)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
     "adds capabilities ['SYS_ADMIN']"),
    ("no-privilege", lambda d: pod(d).update(hostNetwork=True), "hostNetwork is set"),
    ("no-privilege", lambda d: pod(d).update(hostPID=True), "hostPID is set"),
])
def test_a_broken_workload_is_reported_by_that_policy_only(staging, policy, fn, message):
    found = violations(staging, change("Deployment", "docs", fn))
    assert len(found) == 1 and found[0].startswith(f"{policy}: ") and message in found[0], found


def test_binding_a_low_port_is_the_one_capability_allowed(staging):
    add = change("Deployment", "docs", lambda d: container(d)["securityContext"]["capabilities"].update(
        add=["NET_BIND_SERVICE"]))
    assert violations(staging, add) == []


@pytest.mark.parametrize(("image", "pinned"), [
    ("ghcr.io/codai/docs:2024.12.1", True), ("ghcr.io/codai/docs@sha256:" + "a" * 64, True),
    ("postgres:16.4-bookworm", True), ("registry:5000/docs", False), ("docs:latest", False), ("docs:", False),
])
def test_image_pinning(image, pinned):
    assert image_is_pinned(image) is pinned


def test_production_needs_two_replicas_but_staging_may_run_one(staging, production):
    one = change("HorizontalPodAutoscaler", "docs", lambda d: d["spec"].update(minReplicas=1))
    assert violations(staging, one, only="production-replicas") == []
    assert violations(production, one, only="production-replicas") == [
        "production-replicas: minReplicas 1 in production; at least 2 survive a node loss"]
    unset = change("Deployment", "docs", lambda d: d["spec"].pop("replicas"))
    assert violations(production, unset, only="production-replicas") == [
        "production-replicas: replicas 1 in production; at least 2 survive a node loss"]


def test_a_canary_may_run_one_pod_in_production(production):
    canary = change("Deployment", "docs", lambda d: (
        d["spec"].update(replicas=1), d["spec"]["template"]["metadata"]["labels"].update({"codai.io/track": "canary"})))
    assert violations(production, canary, only="production-replicas") == []


def test_which_stacks_are_production_is_configurable(staging, production):
    only_staging = {"productionStacks": ["staging"]}
    one = change("HorizontalPodAutoscaler", "docs", lambda d: d["spec"].update(minReplicas=1))
    assert violations(production, one, only="production-replicas", config=only_staging) == []
    # Staging runs single replicas (sizing: minimal): held to the floor, it fails.
    assert violations(staging, only="production-replicas", config=only_staging)


def test_an_autoscaled_deployment_without_a_budget_is_reported(staging):
    def drop_budget(resources: list[tuple[Registered, Props]]) -> None:
        resources[:] = [(r, p) for r, p in resources if (p["kind"], p["metadata"]["name"]) != (
            "PodDisruptionBudget", "hub")]

    assert violations(staging, drop_budget, only="pdb-for-autoscaled") == [
        "pdb-for-autoscaled: Deployment hub is autoscaled but no PodDisruptionBudget covers its pods"]
    other_pods = change("PodDisruptionBudget", "hub", lambda d: d["spec"]["selector"].update(
        matchLabels={}, matchExpressions=[{"key": "app.kubernetes.io/name", "operator": "In", "values": ["x"]}]))
    assert len(violations(staging, other_pods, only="pdb-for-autoscaled")) == 1


def test_a_value_unknown_during_preview_is_not_a_violation(staging):
    unknown = change("Deployment", "docs", lambda d: container(d).update(image=UNKNOWN_STRING_VALUE))
    with pytest.raises(UnknownValueError):  # the engine reports: the policy cannot run during preview
        violations(staging, unknown, only="images-pinned")


def test_the_pack_runs_with_the_versions_the_program_is_tested_with():
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                package, version = line.split("==")
                pins[package.strip().lower()] = version.strip()
    pack = [line for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines() if "==" in line]
    assert pack and all(pins.get(p.split("==")[0].lower()) == p.split("==")[1] for p in pack), pack
    project = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"

