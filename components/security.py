"""Pod security settings and security-scanner exceptions, in one place.

Every workload of the platform runs under Pod Security Admission ``restricted``; the
builders here are what satisfies it. Exceptions to scanner checks are declared here, each
with the reason that justifies it, and applied only to the objects they fit (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pulumi_kubernetes.core.v1 import PodSecurityContextArgsDict, SecurityContextArgsDict

#: Non-root user of every Codai container: restricted Pod Security asks for non-root, and
#: a UID of 10000 or more stays clear of users that exist on nodes.
RUN_AS_USER = 10001


def pod_security_context(user: int = RUN_AS_USER) -> PodSecurityContextArgsDict:
    return {
        "run_as_non_root": True,
        "run_as_user": user,
        "run_as_group": user,
        "fs_group": user,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def container_security_context(user: int = RUN_AS_USER) -> SecurityContextArgsDict:
    return {
        "allow_privilege_escalation": False,
        "privileged": False,
        "read_only_root_filesystem": True,
        "run_as_non_root": True,
        "run_as_user": user,
        "run_as_group": user,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


@dataclass(frozen=True)
class ScannerException:
    """A checkov check that does not fit an object, and why. Listed in docs/security.md."""

    check: str
    reason: str

    def __post_init__(self) -> None:
        if "=" in self.reason:  # checkov splits the annotation on '='
            raise ValueError(f"{self.check}: a skip reason must not contain '='")


#: Images are pinned to a release tag from the stack file by default.
IMAGE_PINNED_BY_TAG = ScannerException(
    "CKV_K8S_43",
    "Pinned to the release tag set in the stack file and never latest; "
    "set services.<name>.image.digest to pin a digest (the skip then goes away)",
)
#: The services read their credentials from environment variables (twelve-factor).
SECRETS_AS_ENVIRONMENT = ScannerException(
    "CKV_K8S_35",
    "The service reads credentials from its environment; each Secret is made for this service only, "
    "its pods carry no API token and the namespace enforces restricted Pod Security",
)
SCANNER_EXCEPTIONS: tuple[ScannerException, ...] = (IMAGE_PINNED_BY_TAG, SECRETS_AS_ENVIRONMENT)


def checkov_skip_annotations(exceptions: Sequence[ScannerException]) -> dict[str, str]:
    """``checkov.io/skipN`` annotations; they belong on the object's own top-level metadata."""
    return {f"checkov.io/skip{index}": f"{e.check}={e.reason}" for index, e in enumerate(exceptions, start=1)}
