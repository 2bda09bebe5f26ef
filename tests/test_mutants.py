"""The mutation gate's list stays applicable, and the tool tells a caught defect from a missed one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.mutants import CLASSES, ROOT, Mutant, load_mutants, summary, try_mutant

MUTANTS = load_mutants()


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.id)
def test_every_mutant_still_applies_to_the_code(mutant: Mutant) -> None:
    """The text a mutant replaces is still there, once: a refactoring must carry the list along."""
    assert mutant.problems() == []


def test_the_list_covers_every_class_of_defect() -> None:
    assert {mutant.kind for mutant in MUTANTS} == set(CLASSES)


def _toy_project(tmp_path: Path) -> Path:
    (tmp_path / "limits.py").write_text("MAX_RETRIES = 3  # retries before giving up\n")
    (tmp_path / "test_limits.py").write_text("from limits import MAX_RETRIES\n\n\n"
                                             "def test_retries():\n    assert MAX_RETRIES == 3\n")
    return tmp_path


def _mutant(find: str, replace: str) -> Mutant:
    return Mutant(id="toy", kind="setting", why="toy", file="limits.py", find=find, replace=replace,
                  tests=("test_limits.py",))


def test_a_defect_the_tests_catch_is_killed_and_the_file_restored(tmp_path: Path) -> None:
    project = _toy_project(tmp_path)
    outcome = try_mutant(project, _mutant("MAX_RETRIES = 3", "MAX_RETRIES = 30"))
    assert outcome.killed and outcome.detail == "test_limits.py::test_retries"
    assert (project / "limits.py").read_text() == "MAX_RETRIES = 3  # retries before giving up\n"


def test_a_defect_no_test_notices_survives_and_is_named(tmp_path: Path) -> None:
    outcome = try_mutant(_toy_project(tmp_path), _mutant("before giving up", "before stopping"))
    assert not outcome.killed
    assert "survived: toy (limits.py): toy" in summary([outcome])
    assert summary([outcome]).startswith("0 of 1 mutants killed (0 %)")


def test_a_stale_mutant_is_refused_with_the_reason(tmp_path: Path) -> None:
    stale = _mutant("MAX_RETRIES = 5", "MAX_RETRIES = 6")
    assert stale.problems(_toy_project(tmp_path)) == [
        "toy: `find` must occur exactly once in limits.py; the text occurs 0 times"]


def test_every_test_a_mutant_names_is_collected() -> None:
    """A node id that no longer exists would make pytest stop with a usage error, not catch the mutant."""
    named = sorted({test for mutant in MUTANTS for test in mutant.tests})
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *named],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:]


def test_a_mutant_whose_tests_cannot_run_is_not_counted_as_caught(tmp_path: Path) -> None:
    project = _toy_project(tmp_path)
    broken = Mutant(id="toy", kind="setting", why="toy", file="limits.py", find="MAX_RETRIES = 3",
                    replace="MAX_RETRIES = 30", tests=("test_limits.py::test_no_such_test",))
    outcome = try_mutant(project, broken)
    assert not outcome.killed and outcome.detail == "the tests could not run (pytest exit status 4)"
