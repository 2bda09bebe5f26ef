"""Validated strings of the data servers' settings: pinned images, server hosts and cron schedules."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator

from settings.base import checked, image_digest, image_tag, is_dns_name

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def pinned_image(value: str) -> str:
    """A whole image reference with an exact version: its tag or its digest, each by the rule of the
    services' images (:func:`settings.base.image_tag`, :func:`settings.base.image_digest`)."""
    repository, at, digest = value.partition("@")
    if at:
        if not repository or any(c.isspace() for c in repository):
            raise ValueError(f"{value!r}: a digest reference is '<repository>@sha256:<64 hex digits>'")
        checked(repr(value) + ":", image_digest, digest)
        return value
    name, colon, tag = value.rsplit("/", 1)[-1].partition(":")
    if not (name and colon) or any(c.isspace() for c in name):
        raise ValueError(f"{value!r} has no version tag; pin one, such as 'postgres:16.4-bookworm'")
    checked(repr(value) + ":", image_tag, tag)
    return value


def _host(value: str) -> str:
    """A DNS name (one label is fine: a Service in the namespace) or an IP address."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not is_dns_name(value):
        raise ValueError(f"{value!r} is neither a lowercase DNS name nor an IP address") from None
    return value


#: Each cron field's name and the values it may hold (day of week: 0 and 7 are Sunday).
_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ValueError(f"{value!r} is not a five-field cron schedule such as '30 2 * * *' (numbers, *, -, /, ,)")
    # Kubernetes refuses a CronJob whose schedule is out of range; say so before anything is deployed.
    for field, (name, low, high) in zip(fields, _CRON_RANGES, strict=True):
        for number in re.findall(r"(?<!/)\d+", field):
            if not low <= int(number) <= high:
                raise ValueError(f"{value!r}: {name} {number} is outside {low}-{high}")
        if any(int(step) == 0 for step in re.findall(r"/(\d+)", field)):
            raise ValueError(f"{value!r}: a step of 0 in the {name} field never advances")
    return value


PinnedImage = Annotated[str, AfterValidator(pinned_image)]
Host = Annotated[str, AfterValidator(_host)]
CronSchedule = Annotated[str, AfterValidator(_cron)]
