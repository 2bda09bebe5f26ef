"""The CI/CD workflows: valid for GitHub Actions (actionlint), and shaped the way deployments must be."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, require_tool
from tools.offline import discover_stacks

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
CI_FILES = sorted([*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")])
#: The only secrets CI may read; everything else is a Pulumi config secret in the stack files.
ALLOWED_SECRETS = {"PULUMI_ACCESS_TOKEN", "KUBECONFIG", "GITHUB_TOKEN"}


def load(path: Path) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    if True in document:  # PyYAML reads the key `on` as the boolean True
        document["on"] = document.pop(True)
    return document


def actionlint() -> str:
    return require_tool("actionlint", str(Path(sys.executable).parent))


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(f"{action}@")]


def pulumi_version() -> str:
    [version] = re.findall(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    return str(version)


def test_actionlint_is_clean():
    done = subprocess.run([actionlint(), *map(str, WORKFLOWS.glob("*.yml"))], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  up:\n    needs: tests\n    runs-on: ubuntu-24.04\n"
                      "    steps:\n      - run: echo ${{ secrets }}\n")
    done = subprocess.run([actionlint(), str(broken)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert '"up" needs job "tests" which does not exist' in done.stdout and "[expression]" in done.stdout


def test_pull_requests_lint_type_test_render_and_validate():
    workflow = load(WORKFLOWS / "pull-request.yml")
    assert list(workflow["on"]) == ["pull_request"]
    job = workflow["jobs"]["test"]
    commands = [step.get("run") for step in job["steps"] if "run" in step]
    assert commands == ["make lint", "make typecheck", "make test", "make render", "make validate"]
    assert job["env"]["CI"] == "true"  # tests needing a real tool fail instead of skipping


def test_the_preview_matrix_is_every_stack_file(tmp_path: Path):
    jobs = load(WORKFLOWS / "pull-request.yml")["jobs"]
    [listing] = [step for step in jobs["stacks"]["steps"] if step.get("id") == "list"]
    output = tmp_path / "output"
    require_tool("jq")
    subprocess.run(["bash", "-e", "-c", listing["run"]], cwd=ROOT, check=True,
                   env={**os.environ, "GITHUB_OUTPUT": str(output)})
    assert yaml.safe_load(output.read_text().removeprefix("stacks=")) == discover_stacks()
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"


def test_each_stack_is_previewed_with_the_policy_pack_and_the_diff_posted():
    preview = load(WORKFLOWS / "pull-request.yml")["jobs"]["preview"]
    [pulumi] = steps_using(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["pulumi-version"] == pulumi_version()
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_main_deploys_staging_then_production_behind_approval_never_overlapping():
    workflow = load(WORKFLOWS / "deploy.yml")
    jobs = workflow["jobs"]
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert jobs["staging"]["needs"] == "test" and jobs["production"]["needs"] == "staging"
    assert jobs["production"]["environment"] == "production"
    for stack in ("staging", "production"):
        assert jobs[stack]["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        [up] = steps_using(jobs[stack], "pulumi/actions")
        assert up["with"]["command"] == "up" and up["with"]["stack-name"] == stack
        assert up["with"]["policyPacks"] == "policy" and up["with"]["pulumi-version"] == pulumi_version()


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_secrets_only_from_the_secret_store_and_actions_pinned(path: Path):
    text = path.read_text()
    assert set(re.findall(r"secrets\.(\w+)", text)) <= ALLOWED_SECRETS
    # Tokens and kubeconfigs are handed over only as secret expressions, never as literals.
    for key, value in re.findall(r"(PULUMI_ACCESS_TOKEN|KUBECONFIG_CONTENT|kubeconfig|github-token): (.+)", text):
        assert re.fullmatch(r"\$\{\{ (secrets|inputs)\.\w+ \}\}", value.strip()), f"{key}: {value}"
    # Another repository's action runs with our secrets: pinned to a commit (a tag can be moved),
    # the release it is named in a comment for people and Dependabot.
    for uses, comment in re.findall(r"uses: (\S+)(.*)", text):
        assert uses.startswith("./") or (re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", uses)
                                         and re.fullmatch(r" # v\d+\.\d+\.\d+", comment)), uses + comment


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_permissions_are_read_only_except_the_preview_comment(name: str):
    workflow = load(WORKFLOWS / name)
    assert workflow["permissions"] == {"contents": "read"}
    for job_name, job in workflow["jobs"].items():
        writes = {scope for scope, level in (job.get("permissions") or {}).items() if level == "write"}
        assert writes == ({"pull-requests"} if job_name == "preview" else set()), job_name
