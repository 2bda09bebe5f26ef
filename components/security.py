"""Pod security settings and security-scanner exceptions, in one place.

Every workload of the platform runs under Pod Security Admission ``restricted``; the
builders here are what satisfies it. Exceptions to scanner checks live in
:data:`CHECKOV_SKIPS`, each with the reason that justifies it (also listed in docs/security.md).
"""

from __future__ import annotations

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


#: checkov checks that do not fit an object kind, with the reason. Keyed by Kubernetes kind.
CHECKOV_SKIPS: dict[str, list[tuple[str, str]]] = {}


def checkov_skip_annotations(kind: str) -> dict[str, str]:
    """``checkov.io/skipN`` annotations for an object of ``kind`` (on its own top-level metadata)."""
    return {
        f"checkov.io/skip{index}": f"{check}={reason}"
        for index, (check, reason) in enumerate(CHECKOV_SKIPS.get(kind, []), start=1)
    }
