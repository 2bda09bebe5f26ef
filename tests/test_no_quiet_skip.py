"""`make test` cannot pass with a test skipped: CI=true is forced, and any skip fails the run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_tool

_SKIPPING = """\
import pytest


def test_needs_a_missing_server():
    pytest.skip("redis-server is not installed")


def test_runs():
    pass
"""


def _pytest_with_project_conftest(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_toy.py").write_text(_SKIPPING)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-o", "addopts=",
         "--rootdir", str(tmp_path), "-q", str(tmp_path / "test_toy.py")],
        cwd=ROOT, env={**os.environ, "CI": ci}, capture_output=True, text=True, check=False,
    )


def test_under_ci_a_skipped_test_fails_the_run(tmp_path: Path) -> None:
    result = _pytest_with_project_conftest(tmp_path, ci="true")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "1 test(s) skipped under CI=true: a skip is a failure here" in result.stdout


def test_outside_ci_a_skip_is_reported_but_allowed(tmp_path: Path) -> None:
    """A developer running one file by hand on a machine without the server may skip."""
    result = _pytest_with_project_conftest(tmp_path, ci="false")
    assert result.returncode == pytest.ExitCode.OK, result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_make_test_runs_as_ci_whatever_the_environment_says() -> None:
    """`CI ?= true` would let an exported CI=false turn every missing server into a quiet skip."""
    rules = re.findall(r"^test: export CI\s*(\S+)\s*(\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert rules == [("=", "true")]


def test_under_ci_a_missing_tool_fails_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-server-here is not installed"):
        require_tool("no-such-server-here")
