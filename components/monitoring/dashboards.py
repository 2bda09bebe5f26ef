"""Grafana dashboards, generated from the tiers and their services.

An overview of every service by tier (up, traffic, errors, latency, saturation) and one
golden-signals dashboard per tier with a service picker. Queries read the recorded signals the
alert rules read (components/monitoring/signals.py), the data source is the ``${datasource}``
variable, and panel thresholds are the stack's alert thresholds, so the series a panel colours
red is the series its critical alert fires on (orange: its warning).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from components.monitoring.args import ObservabilityArgs
from components.monitoring.signals import LATENCY_QUANTILE, LATENCY_SIGNALS, Signal
from services.tiers import Tier
from settings.monitoring import AlertSettings

Json = dict[str, Any]
#: Grafana's dashboard JSON model version these dashboards are written in (Grafana 10.4+).
SCHEMA_VERSION = 39
GRID_WIDTH = 24
#: Grafana rejects dashboard UIDs longer than this.
MAX_UID = 40
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Grafana's rate window that always spans at least four scrapes (restarts only: the signals are recorded).
RATE = "$__rate_interval"


class Unit(StrEnum):
    """Grafana unit ids."""

    REQUESTS = "reqps"
    RATIO = "percentunit"
    SECONDS = "s"
    NONE = "none"


class PanelType(StrEnum):
    STAT = "stat"
    TIMESERIES = "timeseries"
    ROW = "row"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    type: PanelType
    queries: Sequence[Query]
    unit: Unit = Unit.NONE
    width: int = 8
    height: int = 8
    #: (value, colour) steps above the base colour; thresholds of the matching alert.
    steps: Sequence[tuple[float, str]] = ()
    description: str = ""
    base_colour: str = "green"


@dataclass(frozen=True)
class Selection:
    """Which services a query covers: a namespace and a ``job``/``container`` regex (or a variable)."""

    namespace: str
    services: str

    def jobs(self, *extra: str) -> str:
        return ", ".join((f'namespace="{self.namespace}"', f'job=~"{self.services}"', *extra))

    def containers(self, *extra: str) -> str:
        return ", ".join((f'namespace="{self.namespace}"', f'container=~"{self.services}"', *extra))


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    panels: Sequence[Panel]
    variables: Sequence[Json] = field(default_factory=list)
    tags: Sequence[str] = ()


# --- the signals, recorded once by the rule groups (signals.py) ------------------------------

def _signal(signal: str, matchers: str, legend: str) -> Query:
    """A recorded series (a :class:`Signal`, or a dependency's health signal) under ``matchers``."""
    return Query(f"{signal}{{{matchers}}}", legend)


def _up(s: Selection) -> Query:
    return _signal(Signal.UP, s.jobs(), "{{job}}")


def _traffic(s: Selection) -> Query:
    return _signal(Signal.REQUESTS, s.jobs(), "{{job}}")


def _errors(s: Selection) -> Query:
    return _signal(Signal.ERROR_RATIO, s.jobs(), "{{job}}")


def _latency(s: Selection, quantile: float = LATENCY_QUANTILE) -> Query:
    return _signal(LATENCY_SIGNALS[quantile], s.jobs(), f"{{{{job}}}} p{round(quantile * 100)}")


def _cpu(s: Selection) -> Query:
    return _signal(Signal.CPU, s.containers(), "{{pod}}")


def _memory(s: Selection) -> Query:
    return _signal(Signal.MEMORY, s.containers(), "{{pod}}")


def _restarts(s: Selection) -> Query:
    restarts = f"kube_pod_container_status_restarts_total{{{s.containers()}}}"
    return Query(f"sum by (container) (increase({restarts}[{RATE}]))", "{{container}}")


def _signal_panels(s: Selection, alerts: AlertSettings, objective: float | None, width: int) -> list[Panel]:
    """Traffic, errors, latency and saturation of ``s``, with the alert thresholds drawn in."""
    error_steps = ((alerts.error_ratio_warning, "orange"), (alerts.error_ratio_critical, "red"))
    latency = [_latency(s)] if objective is None else [_latency(s, 0.5), _latency(s), _latency(s, 0.99)]
    return [
        Panel("Request rate", PanelType.TIMESERIES, [_traffic(s)], Unit.REQUESTS, width),
        Panel("Error ratio (5xx)", PanelType.TIMESERIES, [_errors(s)], Unit.RATIO, width, steps=error_steps),
        Panel("Latency", PanelType.TIMESERIES, latency, Unit.SECONDS, width,
              steps=((objective, "orange"),) if objective else ()),
        Panel("CPU (share of limit)", PanelType.TIMESERIES, [_cpu(s)], Unit.RATIO, width,
              steps=((alerts.cpu_warning, "orange"), (alerts.cpu_critical, "red"))),
        Panel("Memory (share of limit)", PanelType.TIMESERIES, [_memory(s)], Unit.RATIO, width,
              steps=((alerts.memory_warning, "orange"), (alerts.memory_critical, "red"))),
    ]


def _up_panel(s: Selection, title: str) -> Panel:
    return Panel(title, PanelType.STAT, [_up(s)], Unit.NONE, GRID_WIDTH, 4, steps=((1, "green"),),
                 description="1 when at least one target of the service answers its scrape.", base_colour="red")


# --- the dashboards ---------------------------------------------------------------------------

def _regex(names: Sequence[str]) -> str:
    return "|".join(names)


def overview(args: ObservabilityArgs) -> Dashboard:
    alerts, namespace = args.monitoring.alerts, args.namespace
    probes = [_signal(probe.signal, f'namespace="{namespace}"', f"{probe.product} {{{{pod}}}}")
              for probe in args.dependencies]
    panels: list[Panel] = [
        Panel("Data tier: reachable", PanelType.STAT, probes, Unit.NONE, GRID_WIDTH, 4, steps=((1, "green"),),
              description="1 when the exporter reaches the database or cache.", base_colour="red"),
    ] if probes else []
    for tier in Tier:
        services = [s.name for s in args.in_tier(tier)]
        if not services:
            continue
        selection = Selection(namespace, _regex(services))
        panels.append(Panel(f"{tier.value.capitalize()} tier ({len(services)} services)", PanelType.ROW, []))
        panels.append(_up_panel(selection, f"{tier.value.capitalize()}: up"))
        panels += _signal_panels(selection, alerts, None, 8)
    return Dashboard("overview", "Overview", panels, tags=("codai", "overview"))


def tier_dashboard(args: ObservabilityArgs, tier: Tier) -> Dashboard:
    alerts, namespace = args.monitoring.alerts, args.namespace
    services = _regex([s.name for s in args.in_tier(tier)])
    picker = {
        "name": "service", "label": "Service", "type": "query", "datasource": DATASOURCE,
        "query": {"query": f'label_values(up{{namespace="{namespace}", job=~"{services}"}}, job)', "refId": "service"},
        "definition": f'label_values(up{{namespace="{namespace}", job=~"{services}"}}, job)',
        "multi": True, "includeAll": True, "allValue": services, "refresh": 2, "sort": 1,
        "current": {"text": "All", "value": "$__all"}, "hide": 0, "options": [], "regex": "",
    }
    selection = Selection(namespace, "$service")
    panels = [
        _up_panel(selection, "Up"),
        *_signal_panels(selection, alerts, alerts.latency_p95_seconds[tier], 12),
        Panel("Container restarts", PanelType.TIMESERIES, [_restarts(selection)], Unit.NONE, 12,
              steps=((1, "red"),)),
    ]
    return Dashboard(tier.value, f"{tier.value.capitalize()} tier: golden signals", panels, [picker],
                     tags=("codai", tier.value))


def dashboards(args: ObservabilityArgs) -> list[Dashboard]:
    return [overview(args), *(tier_dashboard(args, tier) for tier in Tier if args.in_tier(tier))]


# --- Grafana's JSON model -----------------------------------------------------------------------

def uid(namespace: str, slug: str) -> str:
    """Unique per stack (two stacks may share a Grafana), within Grafana's length limit."""
    text = f"{namespace}-{slug}"
    return text if len(text) <= MAX_UID else f"{text[:MAX_UID - 9]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> Json:
    grid = {"h": 1 if panel.type == PanelType.ROW else panel.height, "w": panel.width if panel.type != PanelType.ROW
            else GRID_WIDTH, "x": x, "y": y}
    if panel.type == PanelType.ROW:
        return {"id": panel_id, "type": "row", "title": panel.title, "gridPos": grid, "collapsed": False, "panels": []}
    steps: list[Json] = [{"color": panel.base_colour, "value": None}]
    steps += [{"color": colour, "value": value} for value, colour in panel.steps]
    defaults: Json = {"unit": panel.unit.value, "thresholds": {"mode": "absolute", "steps": steps}}
    options: Json = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}}
    if panel.type == PanelType.TIMESERIES:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line" if panel.steps else "off"}}
    else:
        defaults["color"] = {"mode": "thresholds"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"}
    return {
        "id": panel_id,
        "type": panel.type.value,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": query.expr,
             "legendFormat": query.legend, "range": panel.type == PanelType.TIMESERIES,
             "instant": panel.type == PanelType.STAT}
            for index, query in enumerate(panel.queries)
        ],
    }


def _layout(panels: Sequence[Panel]) -> list[Json]:
    """Left to right, wrapping at the grid's width; a row starts a new line."""
    result: list[Json] = []
    x = y = line_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        width = GRID_WIDTH if panel.type == PanelType.ROW else panel.width
        if x + width > GRID_WIDTH or (panel.type == PanelType.ROW and x > 0):
            x, y, line_height = 0, y + line_height, 0
        result.append(_panel_json(panel, panel_id, x, y))
        line_height = max(line_height, result[-1]["gridPos"]["h"])
        x += width
    return result


def dashboard_json(dashboard: Dashboard, namespace: str) -> Json:
    datasource = {
        "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0, "options": [], "refresh": 1, "regex": "",
    }
    return {
        "uid": uid(namespace, dashboard.slug),
        "title": f"Codai / {dashboard.title} ({namespace})",
        "tags": list(dashboard.tags),
        "description": "Generated by codai-platform (components/monitoring/dashboards.py); edits in Grafana are lost.",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [datasource, *dashboard.variables]},
        "panels": _layout(dashboard.panels),
    }
