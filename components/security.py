"""Pod security settings and security-scanner exceptions, in one place.

Every workload of the platform runs under Pod Security Admission ``restricted``; the
builders here are what satisfies it. Exceptions to scanner checks are declared in
:data:`CHECKOV_SKIPS`, each with the reason that justifies it and the kinds it may be put on,
and applied only to the objects they fit (listed in docs/security.md).
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
    """A checkov check that does not fit some objects, and why.

    It counts as declared only once listed in :data:`CHECKOV_SKIPS` with the ``kinds`` it may be
    put on (on their own top-level metadata, where checkov reads it); ``applies_to`` says, for
    docs/security.md, when the object's builder adds it. tests/test_checkov.py fails on any skip
    in the render that is not declared so, for that kind, with that reason.
    """

    check: str
    reason: str
    kinds: tuple[str, ...] = ()
    applies_to: str = ""

    def __post_init__(self) -> None:
        if "=" in self.reason:  # checkov splits the annotation on '=' and stops the scan
            raise ValueError(f"{self.check}: a skip reason must not contain '='")
        if not self.reason.strip():
            raise ValueError(f"{self.check}: a skip needs a reason")


_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")

#: Images are pinned to an exact release tag from the stack settings by default.
IMAGE_PINNED_BY_TAG = ScannerException(
    "CKV_K8S_43",
    "Pinned to an exact release tag from the stack settings and never latest (settings refuse it); "
    "pin a digest in the settings instead and this skip goes away",
    _WORKLOADS,
    "workloads whose images are pinned by tag, not by digest",
)


def pinned_by_tag_skips(*images: str) -> list[ScannerException]:
    """The exception for workloads any of whose images is pinned by tag (``name:tag``) rather than by
    digest (``name@sha256:...``): the one place that tells the two apart."""
    return [IMAGE_PINNED_BY_TAG] if any("@sha256:" not in image for image in images) else []


#: The services read their credentials from environment variables (twelve-factor).
SECRETS_AS_ENVIRONMENT = ScannerException(
    "CKV_K8S_35",
    "The container reads credentials from its environment, as the service (or exporter) expects; each Secret "
    "is made for this workload only, its pods carry no API token and the namespace enforces restricted Pod "
    "Security",
    _WORKLOADS,
    "workloads that take a Secret through `envFrom` or `secretKeyRef` (services, the Redis exporter)",
)

#: Every checkov exception the platform may carry: the table docs/security.md is checked against.
#: A new exception goes here (with the kinds it fits) and nowhere else; never a global skip.
CHECKOV_SKIPS: tuple[ScannerException, ...] = (IMAGE_PINNED_BY_TAG, SECRETS_AS_ENVIRONMENT)


def checkov_skip_annotations(exceptions: Sequence[ScannerException]) -> dict[str, str]:
    """``checkov.io/skipN`` annotations; they belong on the object's own top-level metadata."""
    return {f"checkov.io/skip{index}": f"{e.check}={e.reason}" for index, e in enumerate(exceptions, start=1)}
