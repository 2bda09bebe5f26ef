"""The signals of the platform, each computed once by a recording rule and read by alerts and dashboards.

A signal is a recorded series (``level:metric:operations``, Prometheus' naming convention) that
the rule group of a scope computes from the raw metrics: per service (``namespace``, ``job``)
or per container (``namespace``, ``pod``, ``container``), always with the ``service`` label
that routing and inhibition use. Alert rules compare it with their threshold and dashboard
panels draw it with the same thresholds as steps, so the series a panel colours red is the one
its critical alert fires on: neither writes its own ``rate()`` or ``histogram_quantile()``.

The recording rules sit first in each tier's rule group: Prometheus evaluates a group's rules in
order, so the alerts read the values recorded in the same evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from components.labels import DATA_TIER
from components.monitoring.args import ObservabilityArgs
from components.names import deployment_name, tls_secret_name
from services.tiers import Tier
from settings.resolve import ResolvedService

#: Window of every rate(): four scrapes of the slowest tier (60 s), so one missed scrape
#: never empties a rate.
RATE_WINDOW = "5m"
#: The quantile the latency objectives are written for, and the others the tier dashboards draw.
LATENCY_QUANTILE = 0.95
LATENCY_QUANTILES = (0.5, LATENCY_QUANTILE, 0.99)


class Signal(StrEnum):
    """Every recorded series; the value is the series' name."""

    UP = "codai:up:max"
    REQUESTS = f"codai:http_requests:rate{RATE_WINDOW}"
    ERROR_RATIO = f"codai:http_requests_error_ratio:rate{RATE_WINDOW}"
    LATENCY_P50 = f"codai:http_request_duration_seconds:p50_{RATE_WINDOW}"
    LATENCY_P95 = f"codai:http_request_duration_seconds:p95_{RATE_WINDOW}"
    LATENCY_P99 = f"codai:http_request_duration_seconds:p99_{RATE_WINDOW}"
    CPU = f"codai:container_cpu_limit_ratio:rate{RATE_WINDOW}"
    MEMORY = "codai:container_memory_limit_ratio:max"


#: The latency signal of each quantile.
LATENCY_SIGNALS = dict(zip(LATENCY_QUANTILES, (Signal.LATENCY_P50, Signal.LATENCY_P95, Signal.LATENCY_P99),
                           strict=True))



class RecordingRule(TypedDict):
    """A Prometheus recording rule as written in a rule file (and in a PrometheusRule's spec.groups[].rules)."""

    record: str
    expr: str


def record(signal: Signal, expr: str) -> RecordingRule:
    return {"record": signal.value, "expr": expr}


def eq(label: str, value: str) -> str:
    """An equality matcher, ``label="value"``."""
    return f'{label}="{value}"'


@dataclass(frozen=True)
class Scope:
    """The workloads one rule group watches, as PromQL label matchers.

    A catalog tier lists its services; the data tier is every container of the namespace
    that is *not* a catalog service (``excluding``), so PostgreSQL, Redis and their
    exporters are watched whatever their names.
    """

    tier: str
    namespace: str
    services: tuple[str, ...]
    excluding: bool = False
    deployments: tuple[str, ...] = ()
    certificates: tuple[str, ...] = ()

    def match(self, label: str, values: Sequence[str] | None = None) -> str:
        listed = "|".join(self.services if values is None else values)
        return f'{label}{"!~" if self.excluding else "=~"}"{listed}"'

    def select(self, metric: str, *matchers: str, namespace_label: str = "namespace") -> str:
        """``metric{namespace="<ns>", <matchers>}``: every selector is scoped to the platform namespace."""
        return f"{metric}{{{', '.join((eq(namespace_label, self.namespace), *matchers))}}}"

    def signal(self, signal: Signal, label: str) -> str:
        """The recorded ``signal`` of this scope's services (``label`` is ``job`` or ``container``)."""
        return self.select(signal.value, self.match(label))

    @staticmethod
    def service_from(expr: str, label: str, pattern: str = "(.*)", replacement: str = "$1") -> str:
        """Sets ``service`` (the label routing and inhibition use) from ``label`` matching ``pattern``."""
        body = expr.replace("\n", "\n  ")
        return f'label_replace(\n  {body},\n  "service", "{replacement}", "{label}", "{pattern}"\n)'


def _deployments(service: ResolvedService) -> list[str]:
    return [deployment_name(service.name, w.track) for w in service.workloads]


def tier_scope(args: ObservabilityArgs, tier: Tier) -> Scope:
    services = args.in_tier(tier)
    return Scope(
        tier=tier.value,
        namespace=args.namespace,
        services=tuple(s.name for s in services),
        deployments=tuple(name for s in services for name in _deployments(s)),
        certificates=tuple(tls_secret_name(s.name) for s in services if s.spec.public),
    )


def data_scope(args: ObservabilityArgs) -> Scope:
    return Scope(tier=DATA_TIER, namespace=args.namespace, services=tuple(s.name for s in args.services),
                 excluding=True)

