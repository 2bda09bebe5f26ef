"""The policy pack, exercised without the CLI: real stacks pass, each broken variant is reported."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.codai_policies import POLICIES
from tools.offline import Registered, StackRun

BY_NAME = {policy.name: policy for policy in POLICIES}


def _options(resource: Registered) -> PolicyResourceOptions:
    return PolicyResourceOptions(resource.protect, resource.ignore_changes, resource.delete_before_replace,
                                 resource.aliases, PolicyCustomTimeouts(0, 0, 0), [], resource.parent)


def violations(run: StackRun, edit: Any = None, only: str | None = None) -> list[str]:
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
                args = ResourceValidationArgs(resource.type, props, resource.urn, resource.name,
                                              _options(resource), None)
                policy.validate(args, report)
        elif isinstance(policy, StackValidationPolicy):
            stack = [PolicyResource(r.type, props, r.urn, r.name, _options(r), None, None, [], {})
                     for r, props in resources]
            policy.validate(StackValidationArgs(stack), report)
    return found


def change(kind: str, name: str, fn: Any) -> Any:
    def edit(resources: list[tuple[Registered, dict[str, Any]]]) -> None:
        for _, props in resources:
            if props["kind"] == kind and props["metadata"]["name"] == name:
                fn(props)
    return edit


def container(props: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = props["spec"]["template"]["spec"]["containers"][0]
    return result


def test_the_real_stacks_pass_every_policy(any_stack):
    assert violations(any_stack) == []


@pytest.mark.parametrize(("policy", "fn", "message"), [
    ("images-pinned", lambda d: container(d).update(image="ghcr.io/codai/docs:latest"), "is not pinned"),
    ("images-pinned", lambda d: container(d).update(image="ghcr.io/codai/docs"), "is not pinned"),
    ("resources-set", lambda d: container(d)["resources"].pop("limits"), "limits missing ['memory']"),
    ("resources-set", lambda d: container(d)["resources"]["requests"].pop("cpu"), "requests missing ['cpu']"),
    ("non-root", lambda d: container(d)["securityContext"].update(runAsUser=0), "runs as UID 0"),
    ("non-root", lambda d: (d["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
                            container(d)["securityContext"].pop("runAsNonRoot")), "runAsNonRoot is not set"),
    ("no-privilege", lambda d: container(d)["securityContext"].update(privileged=True), "privileged"),
    ("no-privilege", lambda d: d["spec"]["template"]["spec"].update(hostNetwork=True), "hostNetwork is set"),
])
def test_a_broken_workload_is_reported(staging, policy, fn, message):
    found = violations(staging, change("Deployment", "docs", fn), only=policy)
    assert len(found) == 1 and message in found[0], found


def test_production_needs_two_replicas_but_staging_may_run_one(staging, production):
    one = change("HorizontalPodAutoscaler", "docs", lambda d: d["spec"].update(minReplicas=1))
    assert violations(staging, one, only="production-replicas") == []
    found = violations(production, one, only="production-replicas")
    assert found == ["production-replicas: minReplicas 1 in production; at least 2 survive a node loss"]


def test_an_autoscaled_deployment_without_a_budget_is_reported(staging):
    def drop_budget(resources: list[tuple[Registered, dict[str, Any]]]) -> None:
        resources[:] = [(r, p) for r, p in resources if (p["kind"], p["metadata"]["name"]) != (
            "PodDisruptionBudget", "hub")]

    found = violations(staging, drop_budget, only="pdb-for-autoscaled")
    assert found == ["pdb-for-autoscaled: Deployment hub is autoscaled but no PodDisruptionBudget covers its pods"]
