"""Validate what every stack renders, offline, with tools others wrote, plus our own cross-object lint.

    python -m tools.validate [STACK ...] [--crds vendor/crds]

- Built-in kinds: ``kubernetes-validate`` in strict mode (unknown fields are errors) against the
  oldest and the newest Kubernetes version the stack supports (``environment.kubernetes``).
- Custom resources: the upstream CRD's ``openAPIV3Schema``, closed as an API server with strict
  field validation treats it (tools/crd_schemas.py).
- Lint: references between objects that no schema can see (tools/lint_objects.py), and
  NetworkPolicies that cut off a call the catalog declares (tools/connectivity.py).

Exit status 0 when every stack is clean, 1 on any error, 2 when the CRD folder is missing.
The CRDs are vendored in ``vendor/crds/`` (tools/cluster/vendor-crds.sh); the program never reads them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.connectivity import Call, connectivity, connectivity_report, declared_calls, rules_allow
from tools.crd_schemas import (
    DEFAULT_CRDS,
    CrdFolderMissingError,
    CrdSchemas,
    close_schema,
    load_crd_schemas,
    schema_errors,
    validate_objects,
)
from tools.lint_objects import lint
from tools.offline import StackRun, discover_stacks, run_stack, stack_plan

# What other modules and tests import from here.
__all__ = [
    "Call",
    "StackReport",
    "close_schema",
    "connectivity",
    "declared_calls",
    "lint",
    "load_crd_schemas",
    "main",
    "rules_allow",
    "schema_errors",
    "validate_run",
    "validate_stack",
]


@dataclass
class StackReport:
    """The figures and errors of one stack."""

    stack: str
    versions: list[str]
    objects: int = 0
    builtin: int = 0
    custom: int = 0
    schema_errors: list[str] = field(default_factory=list)
    lint_errors: list[str] = field(default_factory=list)
    calls_checked: int = 0
    calls_outside: int = 0

    @property
    def errors(self) -> list[str]:
        return self.schema_errors + self.lint_errors

    def summary(self) -> str:
        versions = " and ".join(self.versions)
        return (f"{self.stack}: {self.objects} objects; {self.builtin} built-in objects validated strictly against "
                f"Kubernetes {versions}, {self.custom} custom resources against their CRDs: "
                f"{len(self.schema_errors)} schema error(s); lint incl. {self.calls_checked} declared calls through "
                f"NetworkPolicies ({self.calls_outside} more to dependencies with no server in the render): "
                f"{len(self.lint_errors)} lint error(s)")


def validate_run(run: StackRun, versions: Sequence[str], crds: CrdSchemas,
                 made_elsewhere: Collection[str] = ()) -> StackReport:
    """Schemas, lint and connectivity of one stack run; ``made_elsewhere``: Secrets the stack names but
    does not make (see :func:`tools.lint_objects.lint`)."""
    objects = run.kubernetes_objects()
    schemas = validate_objects(objects, versions, crds)
    calls = connectivity_report(objects, declared_calls())
    return StackReport(
        stack=run.stack, versions=list(versions), objects=len(objects), builtin=schemas.builtin,
        custom=schemas.custom, schema_errors=schemas.errors, lint_errors=lint(objects, made_elsewhere) + calls.errors,
        calls_checked=len(calls.checked), calls_outside=len(calls.outside),
    )


def kubernetes_versions(stack: str) -> list[str]:
    """The oldest and newest Kubernetes versions the stack supports, from its settings."""
    kubernetes = stack_plan(stack).settings.environment.kubernetes
    return list(dict.fromkeys([kubernetes.min_version, kubernetes.max_version]))


def made_elsewhere(stack: str) -> set[str]:
    """Secrets the stack file names that must exist before ``pulumi up`` (docs/data.md)."""
    servers = stack_plan(stack).settings.data_servers.values()
    return set().union(*(server.referenced_secrets() for server in servers))


def validate_stack(stack: str, crds: CrdSchemas | None = None) -> StackReport:
    crds = crds if crds is not None else load_crd_schemas(DEFAULT_CRDS)
    return validate_run(run_stack(stack), kubernetes_versions(stack), crds, made_elsewhere(stack))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stacks (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--crds", type=Path, default=DEFAULT_CRDS, help="folder of upstream CRD manifests")
    options = parser.parse_args(argv)
    try:
        crds = load_crd_schemas(options.crds)
    except CrdFolderMissingError as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    failed = False
    for stack in options.stacks or discover_stacks():
        report = validate_stack(stack, crds)
        print(report.summary())
        for error in report.errors:
            print(f"  - {error}")
        failed = failed or bool(report.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
