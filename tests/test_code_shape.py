"""The program stays readable: small files and short functions (docs/architecture.md).

A file over 300 lines or a function over 60 holds more than one idea; split it where the
ideas part (the service package and the data tier show how) rather than raise the limits.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the program and its tools are made of; tests and vendored code are not held to this.
PROGRAM = ("components/", "settings/", "services/", "tools/", "policy/codai_policies.py", "__main__.py")
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def program_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split()
    return [ROOT / name for name in sorted(set(listed))
            if name.startswith(PROGRAM) and (ROOT / name).exists()]


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() is {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_the_program_is_what_is_measured():
    files = {str(path.relative_to(ROOT)) for path in program_files()}
    assert {"__main__.py", "components/platform.py", "settings/loader.py", "tools/render.py",
            "policy/codai_policies.py"} <= files
    assert not any(name.startswith(("tests/", "policy/venv/")) for name in files)


def test_no_program_file_is_over_300_lines():
    long_files = [f"{path.relative_to(ROOT)} has {lines} lines" for path in program_files()
                  if (lines := len(path.read_text().splitlines())) > MAX_FILE_LINES]
    assert long_files == []


def test_no_function_is_over_60_lines():
    assert [problem for path in program_files() for problem in long_functions(path)] == []


def test_the_measure_counts_a_long_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert long_functions(tmp_path / "long.py") == [f"long.py:1 long() is {MAX_FUNCTION_LINES + 1} lines"]
