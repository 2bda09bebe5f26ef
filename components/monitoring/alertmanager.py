"""Alert routing: an AlertmanagerConfig spec, and the native alertmanager.yml it amounts to.

Critical alerts page through PagerDuty, warnings go to Slack, info alerts to a low-noise
digest webhook; anything else (an alert without a known severity is a bug) goes to Slack,
where people see it. Notifications are grouped by alert name and service, and a critical
alert of a service silences that service's warnings.

Receiver credentials stay in Kubernetes Secrets of the platform namespace; the spec only
names them. :func:`native_config` converts the spec as the Prometheus operator does (receiver
names prefixed ``<namespace>/<name>/``, a ``namespace`` matcher and ``continue: true`` on the
top route, the same matcher on both sides of each inhibit rule), with placeholders where the
operator would put the Secrets' values, so that ``amtool`` can check the routing offline.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from services.tiers import Severity
from settings.monitoring import AlertmanagerSettings, ReceiverTiming, SecretKeyRef

Spec = dict[str, Any]
#: Label set by every rule (components/monitoring/alert_rules.py); matched by routes and inhibition.
SEVERITY_LABEL = "severity"
SERVICE_LABEL = "service"
#: The operator's catch-all receiver at the root of the generated configuration.
NULL_RECEIVER = "null"


class Receiver(StrEnum):
    PAGERDUTY = "pagerduty"
    SLACK = "slack"
    DIGEST = "digest"


#: Where each severity goes. A severity missing here falls through to the default receiver.
ROUTES: dict[Severity, Receiver] = {
    Severity.CRITICAL: Receiver.PAGERDUTY,
    Severity.WARNING: Receiver.SLACK,
    Severity.INFO: Receiver.DIGEST,
}
DEFAULT_RECEIVER = Receiver.SLACK

_SLACK_TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}: {{ .CommonLabels.service }}"
_SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}"
)


def _matcher(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value, "matchType": "="}


def _timing(timing: ReceiverTiming) -> Spec:
    grouping = {"groupBy": list(timing.group_by)} if timing.group_by else {}
    return {**grouping, "groupWait": timing.group_wait, "groupInterval": timing.group_interval,
            "repeatInterval": timing.repeat_interval}


def _secret(ref: SecretKeyRef) -> dict[str, str]:
    return {"name": ref.name, "key": ref.key}


def _receivers(settings: AlertmanagerSettings) -> dict[Receiver, Spec]:
    return {
        Receiver.PAGERDUTY: {"pagerdutyConfigs": [{
            "routingKey": _secret(settings.pagerduty.routing_key),
            "severity": Severity.CRITICAL.value,
            "description": "{{ .CommonAnnotations.summary }}",
            "details": [
                {"key": "service", "value": "{{ .CommonLabels.service }}"},
                {"key": "tier", "value": "{{ .CommonLabels.tier }}"},
                {"key": "runbook", "value": "{{ .CommonAnnotations.runbook_url }}"},
                {"key": "firing", "value": "{{ .Alerts.Firing | len }}"},
            ],
            "sendResolved": True,
        }]},
        Receiver.SLACK: {"slackConfigs": [{
            "apiURL": _secret(settings.slack.api_url),
            "channel": settings.slack.channel,
            "title": _SLACK_TITLE,
            "titleLink": "{{ .CommonAnnotations.runbook_url }}",
            "text": _SLACK_TEXT,
            "sendResolved": True,
        }]},
        # A digest lists what happened; resolutions would only double it.
        Receiver.DIGEST: {"webhookConfigs": [{"urlSecret": _secret(settings.digest.url), "sendResolved": False}]},
    }


def alertmanager_config_spec(settings: AlertmanagerSettings) -> Spec:
    """``spec`` of the AlertmanagerConfig (monitoring.coreos.com/v1alpha1), camelCase as the CRD has it."""
    timings: dict[Receiver, ReceiverTiming] = {
        Receiver.PAGERDUTY: settings.pagerduty, Receiver.SLACK: settings.slack, Receiver.DIGEST: settings.digest,
    }
    routes = [
        {"receiver": receiver.value, "matchers": [_matcher(SEVERITY_LABEL, severity.value)],
         **_timing(timings[receiver])}
        for severity, receiver in ROUTES.items()
    ]
    receivers = _receivers(settings)
    return {
        "route": {
            "receiver": DEFAULT_RECEIVER.value,
            **_timing(timings[DEFAULT_RECEIVER]),
            "groupBy": list(settings.group_by),
            "routes": routes,
        },
        "receivers": [{"name": receiver.value, **receivers[receiver]} for receiver in Receiver],
        "inhibitRules": [{
            "sourceMatch": [_matcher(SEVERITY_LABEL, Severity.CRITICAL.value)],
            "targetMatch": [_matcher(SEVERITY_LABEL, Severity.WARNING.value)],
            "equal": ["namespace", SERVICE_LABEL],
        }],
    }


# --- the native configuration, as the operator generates it ----------------------------------

_ROUTE_FIELDS = {"receiver": "receiver", "groupBy": "group_by", "groupWait": "group_wait",
                 "groupInterval": "group_interval", "repeatInterval": "repeat_interval", "continue": "continue"}


def placeholder(ref: dict[str, str], namespace: str, url: bool = False) -> str:
    """Stands for a Secret's value in the render; never a real credential."""
    where = f"{namespace}/{ref['name']}/{ref['key']}"
    return f"https://secret.invalid/{where}" if url else f"<secret {where}>"


def _matcher_text(matcher: dict[str, str]) -> str:
    return f'{matcher["name"]}{matcher.get("matchType", "=")}"{matcher["value"]}"'


def _native_route(route: Spec, prefix: str) -> Spec:
    unknown = set(route) - {*_ROUTE_FIELDS, "matchers", "routes"}
    if unknown:
        raise ValueError(f"native_config does not convert route fields {sorted(unknown)}")
    # In the fields' own order, not the input's: a rendered spec's key order is not stable across runs.
    native: Spec = {field: route[key] for key, field in _ROUTE_FIELDS.items() if key in route}
    if "receiver" in native:
        native["receiver"] = prefix + native["receiver"]
    if "matchers" in route:
        native["matchers"] = [_matcher_text(m) for m in route["matchers"]]
    if "routes" in route:
        native["routes"] = [_native_route(child, prefix) for child in route["routes"]]
    return native


def _native_receiver(receiver: Spec, prefix: str, namespace: str) -> Spec:
    native: Spec = {"name": prefix + receiver["name"]}
    for kind, configs in receiver.items():
        if kind == "name":
            continue
        if kind == "pagerdutyConfigs":
            native["pagerduty_configs"] = [{
                "send_resolved": c["sendResolved"],
                "routing_key": placeholder(c["routingKey"], namespace),
                "severity": c["severity"],
                "description": c["description"],
                "details": {d["key"]: d["value"] for d in c["details"]},
            } for c in configs]
        elif kind == "slackConfigs":
            native["slack_configs"] = [{
                "send_resolved": c["sendResolved"],
                "api_url": placeholder(c["apiURL"], namespace, url=True),
                "channel": c["channel"],
                "title": c["title"],
                "title_link": c["titleLink"],
                "text": c["text"],
            } for c in configs]
        elif kind == "webhookConfigs":
            native["webhook_configs"] = [{
                "send_resolved": c["sendResolved"],
                "url": placeholder(c["urlSecret"], namespace, url=True),
            } for c in configs]
        else:
            raise ValueError(f"native_config does not convert {kind}")
    return native


def native_config(spec: Spec, namespace: str, name: str) -> Spec:
    """The alertmanager.yml the operator generates from the AlertmanagerConfig ``namespace/name``."""
    prefix = f"{namespace}/{name}/"
    namespace_matcher = _matcher_text(_matcher("namespace", namespace))
    route = _native_route(spec["route"], prefix)
    # Only this namespace's alerts, and the next AlertmanagerConfig still sees them.
    route["matchers"] = [*route.get("matchers", []), namespace_matcher]
    route["continue"] = True
    return {
        "route": {"receiver": NULL_RECEIVER, "routes": [route]},
        "inhibit_rules": [
            {
                "source_matchers": [*(_matcher_text(m) for m in rule["sourceMatch"]), namespace_matcher],
                "target_matchers": [*(_matcher_text(m) for m in rule["targetMatch"]), namespace_matcher],
                "equal": list(rule["equal"]),
            }
            for rule in spec.get("inhibitRules", [])
        ],
        "receivers": [{"name": NULL_RECEIVER},
                      *(_native_receiver(r, prefix, namespace) for r in spec["receivers"])],
        "templates": [],
    }
