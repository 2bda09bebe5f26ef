"""The CI/CD workflows: valid for GitHub Actions (actionlint), and shaped the way deployments must be."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, require_tool

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # PyYAML reads the key `on` as the boolean True.
    document["on"] = document.pop(True)
    return document


def test_actionlint_is_clean():
    actionlint = require_tool("actionlint", str(Path(sys.executable).parent))
    done = subprocess.run([actionlint, *sorted(map(str, WORKFLOWS.glob("*.yml")))],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_pull_requests_test_render_validate_and_preview_every_stack_with_the_policy_pack():
    workflow = load("pull-request.yml")
    assert "pull_request" in workflow["on"]
    steps = " ".join(step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    assert "make test" in steps and "make render" in steps and "make validate" in steps
    preview = workflow["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    assert "Pulumi.*.yaml" in workflow["jobs"]["stacks"]["steps"][1]["run"]
    [pulumi] = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["policyPacks"] == "policy"
    assert preview["permissions"]["pull-requests"] == "write"


def test_main_deploys_staging_then_production_behind_approval_never_overlapping():
    jobs = load("deploy.yml")["jobs"]
    assert jobs["staging"]["needs"] == "test" and jobs["production"]["needs"] == "staging"
    assert jobs["production"]["environment"] == "production"
    for stack in ("staging", "production"):
        assert jobs[stack]["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        [up] = [s for s in jobs[stack]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert up["with"]["command"] == "up" and up["with"]["stack-name"] == stack


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_secrets_only_from_the_secret_store_and_minimal_permissions(name):
    text = (WORKFLOWS / name).read_text()
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for match in re.finditer(r"(PULUMI_ACCESS_TOKEN|KUBECONFIG_CONTENT): (.+)", text):
        assert match.group(2).startswith("${{ secrets."), match.group(0)
    # Every action is pinned to a version.
    for uses in re.findall(r"uses: (\S+)", text):
        assert "@" in uses and not uses.endswith(("@main", "@master")), uses
