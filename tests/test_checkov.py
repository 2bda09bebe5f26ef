"""checkov on the rendered manifests: no failed check, and every skip is a declared, documented exception."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.security import SCANNER_EXCEPTIONS
from tests.conftest import ROOT, STACKS, require_tool, run_with, stack_run
from tools.render import write_stack

CHECKOV_VENV = ROOT / ".venv-checkov" / "bin"


@pytest.fixture(scope="session", params=STACKS)
def scan(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    checkov = require_tool("checkov", str(CHECKOV_VENV))
    out = tmp_path_factory.mktemp("render")
    write_stack(stack_run(request.param), out)
    done = subprocess.run(
        [checkov, "-d", str(out / request.param), "--framework", "kubernetes", "--skip-download",
         "--output", "json", "--compact"],
        capture_output=True, text=True, check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_no_failed_checks(scan):
    failed = [(c["check_id"], c["resource"]) for c in scan["results"]["failed_checks"]]
    assert failed == []
    assert scan["summary"]["passed"] > 2000 and scan["summary"]["parsing_errors"] == 0


def test_every_skip_is_a_declared_exception_with_its_reason(scan):
    declared = {e.check: e.reason for e in SCANNER_EXCEPTIONS}
    skipped = scan["results"]["skipped_checks"]
    assert skipped, "expected the documented exceptions to be in use"
    for check in skipped:
        assert declared.get(check["check_id"]) == check["check_result"]["suppress_comment"], check["check_id"]


def test_digest_pinned_images_carry_no_digest_exception(production):
    pinned = production.get("Deployment", "codai")["metadata"].get("annotations", {})
    assert any(v.startswith("CKV_K8S_43=") for v in pinned.values())
    run = run_with("staging", {"codai": {"image": {"digest": "sha256:" + "b" * 64}}})
    annotations = run.get("Deployment", "codai")["metadata"].get("annotations", {})
    assert not any(v.startswith("CKV_K8S_43=") for v in annotations.values())


def test_security_doc_lists_every_exception_with_its_reason():
    doc = (Path(ROOT) / "docs" / "security.md").read_text()
    for exception in SCANNER_EXCEPTIONS:
        assert f"| {exception.check} | {exception.reason} |" in doc, exception.check
