"""checkov on the rendered manifests of every stack, and the exceptions table of docs/security.md.

    python -m tools.checkov_scan [STACK ...]    # render to a temporary folder, scan, print the figures
    python -m tools.checkov_scan --write-doc    # regenerate the exceptions table in docs/security.md

checkov 3.3.30 pins ``packaging<24``, pulumi 3.272 needs ``packaging>=26``: they cannot share a
venv, so checkov lives in ``.venv-checkov`` (``make test`` installs it from
requirements-checkov.txt) and runs as a separate process, offline (``--skip-download``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.security import CHECKOV_SKIPS
from tools.offline import ROOT, StackRun, discover_stacks, run_stack
from tools.render import write_stack

CHECKOV_BIN = ROOT / ".venv-checkov" / "bin"
SECURITY_DOC = ROOT / "docs" / "security.md"
SKIP_ANNOTATION = "checkov.io/skip"
DOC_BEGIN = "<!-- checkov exceptions: generated from CHECKOV_SKIPS by `python -m tools.checkov_scan --write-doc` -->"
DOC_END = "<!-- end of checkov exceptions -->"


def checkov_binary() -> str | None:
    """checkov from its own venv, else from PATH."""
    return shutil.which("checkov", path=os.pathsep.join([str(CHECKOV_BIN), os.environ.get("PATH", "")]))


@dataclass
class Finding:
    check: str
    #: checkov's resource id: ``Kind.namespace.name``.
    resource: str
    name: str = ""
    reason: str = ""

    @property
    def kind(self) -> str:
        return self.resource.split(".", 1)[0]


@dataclass
class ScanResult:
    """checkov's verdict on one folder of manifests."""

    passed: int
    failed: list[Finding] = field(default_factory=list)
    skipped: list[Finding] = field(default_factory=list)
    parsing_errors: int = 0
    resources: int = 0
    version: str = ""


def _command(binary: str, folder: Path) -> list[str]:
    return [binary, "-d", str(folder), "--framework", "kubernetes", "--skip-download", "--output", "json",
            "--compact"]


def start_scan(folder: Path, binary: str) -> subprocess.Popen[str]:
    """Start checkov on ``folder``; scans of several stacks run side by side."""
    return subprocess.Popen(_command(binary, folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LOG_LEVEL": "WARNING"})


def finish_scan(process: subprocess.Popen[str]) -> ScanResult:
    stdout, stderr = process.communicate()
    try:
        report: Any = json.loads(stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"checkov exited {process.returncode} without a JSON report:\n{stderr[-3000:]}") from None
    if isinstance(report, list):  # one entry per framework when several ran
        [report] = [r for r in report if r.get("check_type") == "kubernetes"]
    results = report.get("results", {})
    summary = report.get("summary", {})

    def findings(key: str) -> list[Finding]:
        return [Finding(c["check_id"], c["resource"], c.get("check_name", ""),
                        (c.get("check_result") or {}).get("suppress_comment", "")) for c in results.get(key, [])]

    return ScanResult(passed=int(summary.get("passed", 0)), failed=findings("failed_checks"),
                      skipped=findings("skipped_checks"), parsing_errors=int(summary.get("parsing_errors", 0)),
                      resources=int(summary.get("resource_count", 0)), version=str(summary.get("checkov_version")))


@dataclass
class _Rendered(StackRun):
    """Objects to write as the render writes a stack (they may be edited copies of a run's)."""

    objects: list[dict[str, Any]] = field(default_factory=list)

    def kubernetes_objects(self, redact: bool = True) -> list[dict[str, Any]]:  # noqa: ARG002 - already plain
        return self.objects


def scan_objects(sets: Mapping[str, list[dict[str, Any]]], out: Path, binary: str) -> dict[str, ScanResult]:
    """Write each set of objects under ``out/<name>`` as the render does, and scan them all at once."""
    processes = {}
    for name, objects in sets.items():
        write_stack(_Rendered(name, [], {}, objects=objects), out)
        processes[name] = start_scan(out / name, binary)
    return {name: finish_scan(process) for name, process in processes.items()}


# --- the exceptions ---------------------------------------------------------------------------------


def declared(check: str, kind: str, reason: str) -> bool:
    """Whether CHECKOV_SKIPS has this exception (check and reason) for this kind of object."""
    return any(e.check == check and e.reason == reason and kind in e.kinds for e in CHECKOV_SKIPS)


def _explain(check: str, kind: str, reason: str) -> str:
    same_check = [e for e in CHECKOV_SKIPS if e.check == check]
    if not same_check:
        return f"{check} is not declared in CHECKOV_SKIPS (components/security.py)"
    if not any(kind in e.kinds for e in same_check):
        return f"{check} is declared in CHECKOV_SKIPS for {', '.join(k for e in same_check for k in e.kinds)} only"
    return f"{check} is declared in CHECKOV_SKIPS with another reason than {reason!r}"


def skip_problems(skipped: Iterable[Finding]) -> list[str]:
    """Skips checkov honoured that are not declared in CHECKOV_SKIPS, for that kind, with that reason."""
    return [f"{f.resource}: {_explain(f.check, f.kind, f.reason)}" for f in skipped
            if not declared(f.check, f.kind, f.reason)]


def annotation_problems(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """``checkov.io/skip*`` annotations anywhere in an object that CHECKOV_SKIPS does not declare for it."""
    problems = []
    for obj in objects:
        kind = str(obj.get("kind"))
        where = f"{kind}/{obj.get('metadata', {}).get('name')}"
        for path, key, value in _annotations(obj):
            if not key.startswith(SKIP_ANNOTATION):
                continue
            if path != "metadata":
                problems.append(f"{where}: {key} on {path} is ignored by checkov (top-level metadata only)")
                continue
            check, _, reason = str(value).partition("=")
            if not declared(check, kind, reason):
                problems.append(f"{where}: {key}: {_explain(check, kind, reason)}")
    return problems


def _annotations(value: Any, path: str = "") -> Iterable[tuple[str, str, Any]]:
    if isinstance(value, Mapping):
        if isinstance(value.get("annotations"), Mapping) and path.endswith("metadata"):
            yield from ((path.lstrip("."), k, v) for k, v in value["annotations"].items())
        for key, item in value.items():
            yield from _annotations(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _annotations(item, path)


def skips_table() -> str:
    """The Markdown table of CHECKOV_SKIPS, as docs/security.md carries it."""
    incomplete = [e.check for e in CHECKOV_SKIPS if not e.kinds or not e.applies_to]
    if incomplete:
        raise ValueError(f"CHECKOV_SKIPS entries need the kinds they fit and when they apply: {incomplete}")
    rows = ["| check | reason | put on | when |", "|---|---|---|---|"]
    rows += [f"| {e.check} | {e.reason} | {', '.join(e.kinds)} | {e.applies_to} |" for e in CHECKOV_SKIPS]
    return "\n".join(rows)


def doc_with_table(text: str) -> str:
    """``text`` (docs/security.md) with the generated table between its markers."""
    if DOC_BEGIN not in text or DOC_END not in text:
        raise ValueError(f"{SECURITY_DOC.name} lacks the markers of the generated table:\n{DOC_BEGIN}\n{DOC_END}")
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    return f"{head}{DOC_BEGIN}\n{skips_table()}\n{DOC_END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stacks (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--write-doc", action="store_true", help="regenerate the table in docs/security.md")
    options = parser.parse_args(argv)
    if options.write_doc:
        SECURITY_DOC.write_text(doc_with_table(SECURITY_DOC.read_text()))
        print(f"wrote {len(CHECKOV_SKIPS)} exceptions to {SECURITY_DOC.relative_to(ROOT)}")
        return 0
    binary = checkov_binary()
    if binary is None:
        print("error: checkov not found; `make .venv-checkov/.installed` installs it", file=sys.stderr)
        return 2
    stacks = options.stacks or discover_stacks()
    with tempfile.TemporaryDirectory() as folder:
        results = scan_objects({stack: run_stack(stack).kubernetes_objects() for stack in stacks}, Path(folder), binary)
    failed = False
    for stack, result in results.items():
        problems = skip_problems(result.skipped)
        print(f"{stack}: checkov {result.version}, {result.resources} resources: {result.passed} passed, "
              f"{len(result.failed)} failed, {len(result.skipped)} skipped, {result.parsing_errors} parsing errors")
        for finding in result.failed:
            print(f"  FAILED {finding.check} {finding.resource}: {finding.name}")
        for check, reason in sorted({(f.check, f.reason) for f in result.skipped}):
            kinds = sorted({f.kind for f in result.skipped if (f.check, f.reason) == (check, reason)})
            count = sum((f.check, f.reason) == (check, reason) for f in result.skipped)
            print(f"  skipped {check} on {count} {'/'.join(kinds)}: {reason}")
        for problem in problems:
            print(f"  - {problem}")
        failed = failed or bool(result.failed or problems or result.parsing_errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
