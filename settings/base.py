"""Shared pydantic plumbing and small validated value types for stack settings."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

#: A stack-file key path and what is wrong there: the unit of every validation error.
Problem = tuple[str, str]


class SettingsModel(BaseModel):
    """Base of every stack-config model.

    Keys are camelCase in stack files (Pulumi's convention) and snake_case in Python.
    Unknown keys are errors: a typo must never be silently ignored.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
    )


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d+)?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*$")
_K8S_VERSION = re.compile(r"^1\.(\d{2})$")
#: A label's name part, and a label value (which may be empty): Kubernetes' own syntax.
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def checked(what: str, validate: Callable[[str], str], value: str) -> str:
    """``validate(value)``, its refusal prefixed with what the value is: ``cluster 'X' is not a DNS label ...``.

    For a value checked away from a field of its own (a model's cross-key rule, the CloudNativePG
    spec builders): each validator's message starts with the offending value, so the name reads
    in front of it, and one rule keeps one wording wherever it runs.
    """
    try:
        return validate(value)
    except ValueError as error:
        raise ValueError(f"{what} {error}") from error


def dns_label(value: str) -> str:
    """A DNS-1123 label: the name of a namespace, Secret, StorageClass or CloudNativePG object."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS label (lowercase a-z, 0-9 and '-', at most 63 characters)")
    return value


def is_dns_name(value: str, *, min_labels: int = 1) -> bool:
    """Lowercase DNS labels joined by dots, at most 253 characters: a host or a Service's name."""
    labels = value.split(".")
    return (len(value) <= 253 and len(labels) >= min_labels
            and all(len(label) <= 63 and _DNS_LABEL.match(label) for label in labels))


def _hostname(value: str) -> str:
    if not is_dns_name(value, min_labels=2):
        raise ValueError(f"{value!r} is not a valid DNS hostname such as 'staging.codai.dev' (lowercase, dotted)")
    return value


def image_tag(value: str) -> str:
    """An image's exact version: a tag other than ``latest``."""
    if not _IMAGE_TAG.match(value):
        raise ValueError(f"{value!r} is not a valid image tag (letters, digits, '_', '.', '-', not starting with "
                         "'.' or '-', at most 128 characters)")
    if value == "latest":
        raise ValueError("'latest' is not a pinned version; use a release tag such as '2024.12.1'")
    return value


def image_digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise ValueError(f"{value!r} is not an image digest of the form 'sha256:<64 hex digits>'")
    return value


def _registry(value: str) -> str:
    if not _REGISTRY.match(value):
        raise ValueError(f"{value!r} is not an image registry path such as 'ghcr.io/codai'")
    return value


def _label_key(value: str) -> str:
    """``name`` or ``prefix/name``, the prefix a DNS subdomain: a label or annotation key."""
    prefix, _, name = value.rpartition("/")
    prefix_ok = not prefix or (len(prefix) <= 253 and all(_DNS_LABEL.match(part) for part in prefix.split(".")))
    if not (prefix_ok and _LABEL_NAME.match(name)):
        raise ValueError(f"{value!r} is not a Kubernetes label key such as 'app.kubernetes.io/name' "
                         "(an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.')")
    return value


def _label_selector(value: dict[str, str]) -> dict[str, str]:
    """Labels that select objects: at least one (an empty selector would match every pod), each valid."""
    if not value:
        raise ValueError("needs at least one label: an empty selector matches everything")
    for key, text in value.items():
        _label_key(key)
        if not _LABEL_VALUE.match(text):
            raise ValueError(f"{text!r} (of {key!r}) is not a label value (at most 63 letters, digits, '-', '_', "
                             "'.', starting and ending with a letter or digit)")
    return value


def secret_key(value: str) -> str:
    """A key of a Secret's data, in Kubernetes' own syntax."""
    if not _SECRET_KEY.match(value):
        raise ValueError(f"{value!r} is not a valid Secret key (letters, digits, '-', '_', '.')")
    return value


def _k8s_version(value: str) -> str:
    if not _K8S_VERSION.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes minor version such as '1.30'")
    return value


DnsLabel = Annotated[str, AfterValidator(dns_label)]
Hostname = Annotated[str, AfterValidator(_hostname)]
ImageTag = Annotated[str, AfterValidator(image_tag)]
ImageDigest = Annotated[str, AfterValidator(image_digest)]
Registry = Annotated[str, AfterValidator(_registry)]
KubernetesVersion = Annotated[str, AfterValidator(_k8s_version)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
#: A key of a Kubernetes Secret's data.
SecretKey = Annotated[str, AfterValidator(secret_key)]
#: Labels that pick objects (Prometheus's pods, the operator's selectors): never empty, never malformed.
LabelSelector = Annotated[dict[str, str], AfterValidator(_label_selector)]


def minor(version: str) -> int:
    """``"1.30"`` -> ``30``."""
    return int(version.split(".")[1])


#: A Prometheus/Alertmanager duration, units in descending order ("1h30m"): the pattern the
#: monitoring.coreos.com CRDs enforce, so a value accepted here is accepted by the API server.
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def duration_seconds(text: str) -> float:
    """``"1h30m"`` -> ``5400.0``; raises ValueError for anything else."""
    if text == "0":
        return 0.0
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"{text!r} is not a duration such as '30s', '5m' or '1h30m' (units y w d h m s ms, "
                         "largest first)")
    # Seven groups, seven units: `strict` cannot matter here, so mutating it proves nothing.
    pairs = zip(match.groups(), _DURATION_SECONDS, strict=True)  # pragma: no mutate
    return sum(int(part) * unit for part, unit in pairs if part)


def _duration(text: str) -> str:
    duration_seconds(text)
    return text


def _positive_duration(text: str) -> str:
    if duration_seconds(text) <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return text


#: A duration such as ``for`` of an alert or a rollout's deadline ("0": at once).
Duration = Annotated[str, AfterValidator(_duration)]
PositiveDuration = Annotated[str, AfterValidator(_positive_duration)]
