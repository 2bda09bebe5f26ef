"""Shared fixtures: stack runs under Pulumi mocks, and real tools that must exist under CI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from components.monitoring.rules import RuleGroup, rule_groups
from components.platform import observability_args
from settings.loader import PROJECT, StackPlan
from tests.monitoring_fixtures import REPLICATED_REDIS, ROLLOUTS, platform_with, write_rule_files
from tools.offline import StackRun, discover_stacks, run_stack, stack_config

ROOT = Path(__file__).resolve().parent.parent
STACKS = discover_stacks()
#: The least a stack file says about PostgreSQL: where its in-cluster server archives (the settings
#: refuse backups kept in the cluster they protect).
POSTGRES_BACKUP: dict[str, Any] = {"backup": {"target": "objectStore", "objectStore": {
    "url": "s3://codai-backups/test", "credentialsSecret": "postgres-backup-s3"}}}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, *extra_dirs: str) -> str:
    """Path of a real binary; without it the test skips locally and fails under CI=true."""
    found = shutil.which(name, path=os.pathsep.join([*extra_dirs, os.environ.get("PATH", "")]))
    if found:
        return found
    message = f"{name} is not installed (run `make test`, which installs it with apt-get)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI (and so under `make test`) a run with any skipped test fails.

    ``require_tool`` already fails instead of skipping; this catches every other way a test
    can be skipped (a marker, ``importorskip``, a fixture), so a green run has run everything.
    """
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if in_ci() and skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write("\n")
        reporter.write_line(f"{len(skipped)} test(s) skipped under CI=true: a skip is a failure here", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_RUNS: dict[str, StackRun] = {}


def stack_run(stack: str) -> StackRun:
    """The program run once per stack per test session (runs are deterministic)."""
    if stack not in _RUNS:
        _RUNS[stack] = run_stack(stack)
    return _RUNS[stack]


def run_with(stack: str, services: dict[str, Any]) -> StackRun:
    """The stack file's config with ``services`` overrides merged in, run under mocks."""
    config, secrets = stack_config(stack)
    merged = json.loads(config.get(f"{PROJECT}:services", "{}"))
    merged.update(services)
    config[f"{PROJECT}:services"] = json.dumps(merged)
    return run_stack(stack, config=config, secret_keys=secrets)


@pytest.fixture(params=STACKS)
def any_stack(request: pytest.FixtureRequest) -> StackRun:
    """Each stack file of the repository in turn."""
    return stack_run(request.param)


@pytest.fixture
def staging() -> StackRun:
    return stack_run("staging")


@pytest.fixture
def production() -> StackRun:
    return stack_run("production")


# --- the platform the monitoring tests watch (tests/monitoring_fixtures.py), once per module ------------


@pytest.fixture(scope="module")
def rollouts_plan() -> StackPlan:
    """Staging's settings with a canary and blue-green colours (``ROLLOUTS``) and a replicated Redis."""
    return platform_with(ROLLOUTS, redis=REPLICATED_REDIS)


@pytest.fixture(scope="module")
def rollouts_namespace(rollouts_plan: StackPlan) -> str:
    return rollouts_plan.settings.environment.namespace


@pytest.fixture(scope="module")
def rollouts_groups(rollouts_plan: StackPlan) -> dict[str, RuleGroup]:
    return rule_groups(observability_args(rollouts_plan))


@pytest.fixture(scope="module")
def rollouts_rule_dir(rollouts_groups: dict[str, RuleGroup], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rule groups as rule files in a folder of their own, where promtool's test files go too."""
    return write_rule_files(rollouts_groups, tmp_path_factory.mktemp("rules"))
