"""checkov on the rendered manifests: no failed check, and every skip is declared, documented and earned."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.security import CHECKOV_SKIPS, IMAGE_PINNED_BY_TAG, ScannerException, checkov_skip_annotations
from tests.conftest import STACKS, require_tool, run_with, stack_run
from tools.checkov_scan import (
    CHECKOV_BIN,
    SECURITY_DOC,
    SKIP_ANNOTATION,
    Finding,
    ScanResult,
    annotation_problems,
    doc_with_table,
    scan_objects,
    skip_problems,
)

#: The variant scanned beside the stacks: staging without its skips, one container made privileged.
UNSKIPPED = "staging-unskipped"
BROKEN = ("Deployment", "docs")


def unskipped(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = copy.deepcopy(objects)
    for obj in result:
        annotations = obj["metadata"].get("annotations", {})
        for key in [k for k in annotations if k.startswith(SKIP_ANNOTATION)]:
            del annotations[key]
        if (obj["kind"], obj["metadata"]["name"]) == BROKEN:
            obj["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    return result


@pytest.fixture(scope="session")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScanResult]:
    """checkov once per stack and once on the variant, all started together (one session)."""
    checkov = require_tool("checkov", str(CHECKOV_BIN))
    sets = {stack: stack_run(stack).kubernetes_objects() for stack in STACKS}
    sets[UNSKIPPED] = unskipped(stack_run("staging").kubernetes_objects())
    return scan_objects(sets, tmp_path_factory.mktemp("checkov"), checkov)


def described(findings: list[Finding]) -> list[str]:
    return [f"{f.check} {f.resource}: {f.name}" for f in findings]


@pytest.mark.parametrize("stack", STACKS)
def test_no_failed_checks(scans, stack):
    result = scans[stack]
    assert described(result.failed) == []
    assert result.parsing_errors == 0 and result.version == "3.3.30"
    # Every rendered object was scanned (checkov also counts pod templates as resources).
    assert result.resources >= len(stack_run(stack).kubernetes_objects()) and result.passed > 0


@pytest.mark.parametrize("stack", STACKS)
def test_every_skip_is_declared_for_that_kind_with_its_reason(scans, stack):
    assert skip_problems(scans[stack].skipped) == []
    assert annotation_problems(stack_run(stack).kubernetes_objects()) == []


def test_every_skip_is_earned_and_checkov_catches_a_broken_object(scans):
    """Without the annotations checkov fails exactly what was skipped, plus the privileged container."""
    skipped = {(f.check, f.resource) for f in scans["staging"].skipped}
    failed = {(f.check, f.resource) for f in scans[UNSKIPPED].failed}
    namespace = stack_run("staging").get(*BROKEN)["metadata"]["namespace"]
    assert skipped and failed - skipped == {("CKV_K8S_16", f"{BROKEN[0]}.{namespace}.{BROKEN[1]}")}
    assert skipped <= failed


def test_skip_problems_name_an_undeclared_check_a_wrong_kind_or_reason():
    declared = IMAGE_PINNED_BY_TAG
    assert skip_problems([
        Finding("CKV_K8S_43", "Deployment.ns.ok", reason=declared.reason),
        Finding("CKV_K8S_8", "Deployment.ns.a", reason="no probes"),
        Finding("CKV_K8S_43", "Service.ns.b", reason=declared.reason),
        Finding("CKV_K8S_43", "StatefulSet.ns.c", reason="because"),
    ]) == [
        "Deployment.ns.a: CKV_K8S_8 is not declared in CHECKOV_SKIPS (components/security.py)",
        "Service.ns.b: CKV_K8S_43 is declared in CHECKOV_SKIPS for Deployment, StatefulSet, DaemonSet, Job, "
        "CronJob only",
        "StatefulSet.ns.c: CKV_K8S_43 is declared in CHECKOV_SKIPS with another reason than 'because'",
    ]


def test_annotations_are_checked_where_checkov_reads_them(staging):
    deployment = copy.deepcopy(staging.get("Deployment", "docs"))
    deployment["spec"]["template"]["metadata"].setdefault("annotations", {})[f"{SKIP_ANNOTATION}1"] = \
        f"CKV_K8S_43={IMAGE_PINNED_BY_TAG.reason}"
    service = copy.deepcopy(staging.get("Service", "docs"))
    # Made with the helper the builders use, but never declared in CHECKOV_SKIPS.
    service["metadata"]["annotations"] = checkov_skip_annotations(
        [ScannerException("CKV_K8S_21", "Namespace set by the provider")])
    assert annotation_problems([deployment, service]) == [
        "Deployment/docs: checkov.io/skip1 on spec.template.metadata is ignored by checkov (top-level metadata only)",
        "Service/docs: checkov.io/skip1: CKV_K8S_21 is not declared in CHECKOV_SKIPS (components/security.py)",
    ]


def test_a_skip_reason_with_an_equals_sign_is_refused():
    with pytest.raises(ValueError, match="must not contain '='"):
        ScannerException("CKV_K8S_15", "imagePullPolicy=IfNotPresent is fine", ("Deployment",), "always")


def test_every_declared_exception_names_its_kinds_and_when_it_applies():
    assert all(e.kinds and e.applies_to for e in CHECKOV_SKIPS)


def test_digest_pinned_images_carry_no_digest_exception(staging):
    annotations = staging.get("Deployment", "codai")["metadata"].get("annotations", {})
    assert f"{IMAGE_PINNED_BY_TAG.check}={IMAGE_PINNED_BY_TAG.reason}" in annotations.values()
    run = run_with("staging", {"codai": {"image": {"digest": "sha256:" + "b" * 64}}})
    annotations = run.get("Deployment", "codai")["metadata"].get("annotations", {})
    assert not any(v.startswith(f"{IMAGE_PINNED_BY_TAG.check}=") for v in annotations.values())


def test_the_security_doc_lists_exactly_the_declared_exceptions():
    text = SECURITY_DOC.read_text()
    assert doc_with_table(text) == text, "run `.venv/bin/python -m tools.checkov_scan --write-doc`"
    for exception in CHECKOV_SKIPS:
        assert f"| {exception.check} | {exception.reason} |" in text

