"""Alert routing: the AlertmanagerConfig is valid, and the configuration it becomes routes and inhibits as intended.

``amtool`` checks the native configuration and resolves routes; a real Alertmanager, started on
a free port with that configuration, shows the inhibition at work.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from components.monitoring import ALERTMANAGER_CONFIG, alertmanager_config_name
from components.monitoring.alertmanager import (
    NULL_RECEIVER,
    ROUTES,
    Receiver,
    alertmanager_config_spec,
    native_config,
)
from services.tiers import Severity
from settings.monitoring import AlertmanagerSettings
from tests.conftest import STACKS, require_tool
from tools.alertmanager_config import dump_yaml
from tools.offline import stack_plan
from tools.validate import load_crd_schemas

NAME = alertmanager_config_name("codai")


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(namespace, AlertmanagerConfig spec) of each stack."""
    plan = stack_plan(request.param)
    return plan.settings.environment.namespace, alertmanager_config_spec(plan.settings.monitoring.alertmanager)


@pytest.fixture(scope="module")
def native_file(stack: tuple[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    namespace, spec = stack
    path = tmp_path_factory.mktemp("alertmanager") / "alertmanager.yml"
    path.write_text(dump_yaml(native_config(spec, namespace, NAME)))
    return path


# --- the AlertmanagerConfig --------------------------------------------------------------------


def test_each_severity_has_its_receiver_and_the_rest_goes_to_slack(stack):
    _, spec = stack
    routes = {r["matchers"][0]["value"]: r["receiver"] for r in spec["route"]["routes"]}
    assert routes == {"critical": "pagerduty", "warning": "slack", "info": "digest"}
    assert spec["route"]["receiver"] == "slack"
    assert spec["route"]["groupBy"] == ["alertname", "service"]
    assert {r["name"] for r in spec["receivers"]} == set(Receiver)


def test_the_digest_is_low_noise():
    spec = alertmanager_config_spec(AlertmanagerSettings())
    routes = {r["receiver"]: r for r in spec["route"]["routes"]}
    assert routes["digest"]["groupBy"] == ["namespace"]  # one batch for the plan
    assert (routes["digest"]["groupInterval"], routes["digest"]["repeatInterval"]) == ("1h", "24h")
    assert routes["pagerduty"]["repeatInterval"] == "1h"
    (digest,) = [r for r in spec["receivers"] if r["name"] == "digest"]
    assert digest["webhookConfigs"][0]["sendResolved"] is False


def test_each_route_carries_its_own_receivers_timing():
    """Distinct timings per receiver (pagerduty and slack share a 5m groupInterval by default)."""
    settings = AlertmanagerSettings.model_validate({
        "pagerduty": {"groupWait": "11s", "groupInterval": "3m", "repeatInterval": "2h"},
        "slack": {"groupWait": "31s", "groupInterval": "7m", "repeatInterval": "5h", "groupBy": ["alertname"]},
        "digest": {"groupWait": "6m", "groupInterval": "90m", "repeatInterval": "30h"},
    })
    spec = alertmanager_config_spec(settings)
    timing = {r["receiver"]: {k: v for k, v in r.items() if k not in ("receiver", "matchers")}
              for r in spec["route"]["routes"]}
    assert timing == {
        "pagerduty": {"groupWait": "11s", "groupInterval": "3m", "repeatInterval": "2h"},
        "slack": {"groupBy": ["alertname"], "groupWait": "31s", "groupInterval": "7m", "repeatInterval": "5h"},
        "digest": {"groupBy": ["namespace"], "groupWait": "6m", "groupInterval": "90m", "repeatInterval": "30h"},
    }
    # the top route (unknown severities) goes to slack with slack's timing and the configured grouping
    top = {k: v for k, v in spec["route"].items() if k != "routes"}
    assert top == {"receiver": "slack", "groupWait": "31s", "groupInterval": "7m", "repeatInterval": "5h",
                   "groupBy": ["alertname", "service"]}


def test_a_critical_alert_silences_the_warnings_of_its_service():
    (rule,) = alertmanager_config_spec(AlertmanagerSettings())["inhibitRules"]
    assert rule["sourceMatch"] == [{"name": "severity", "value": "critical", "matchType": "="}]
    assert rule["targetMatch"] == [{"name": "severity", "value": "warning", "matchType": "="}]
    assert "service" in rule["equal"]


def test_receiver_credentials_are_secret_references_from_settings():
    settings = AlertmanagerSettings.model_validate({
        "pagerduty": {"routingKey": {"name": "pd-codai", "key": "integration"}},
        "slack": {"apiUrl": {"name": "slack-codai", "key": "url"}, "channel": "#codai-staging"},
        "digest": {"url": {"name": "digest-codai", "key": "endpoint"}},
    })
    receivers = {r["name"]: r for r in alertmanager_config_spec(settings)["receivers"]}
    assert receivers["pagerduty"]["pagerdutyConfigs"][0]["routingKey"] == {"name": "pd-codai", "key": "integration"}
    assert receivers["slack"]["slackConfigs"][0]["apiURL"] == {"name": "slack-codai", "key": "url"}
    assert receivers["slack"]["slackConfigs"][0]["channel"] == "#codai-staging"
    assert receivers["digest"]["webhookConfigs"][0]["urlSecret"] == {"name": "digest-codai", "key": "endpoint"}
    assert "http" not in json.dumps(receivers)  # no URL or key written in: only references


@pytest.fixture(scope="module")
def crd_schema() -> dict[str, Any]:
    return load_crd_schemas()[ALERTMANAGER_CONFIG]


def test_the_spec_is_valid_for_the_crd_with_unknown_fields_rejected(stack, crd_schema):
    namespace, spec = stack
    obj = {"apiVersion": ALERTMANAGER_CONFIG[0], "kind": ALERTMANAGER_CONFIG[1],
           "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}
    assert list(jsonschema.Draft7Validator(crd_schema).iter_errors(obj)) == []
    # The CRD leaves child routes schemaless (x-kubernetes-preserve-unknown-fields); the operator
    # parses them as routes, so they are held to the route schema here.
    route = jsonschema.Draft7Validator(crd_schema["properties"]["spec"]["properties"]["route"])
    for child in spec["route"]["routes"]:
        assert list(route.iter_errors(child)) == []
    typo = {**spec["route"]["routes"][0], "groupWiat": "10s"}
    assert [e.message for e in route.iter_errors(typo)] == ["Additional properties are not allowed "
                                                            "('groupWiat' was unexpected)"]


# --- the native configuration ------------------------------------------------------------------


def test_native_config_is_what_the_operator_generates(stack):
    namespace, spec = stack
    native = native_config(spec, namespace, NAME)
    (top,) = native["route"]["routes"]
    assert native["route"]["receiver"] == NULL_RECEIVER
    assert top["matchers"] == [f'namespace="{namespace}"'] and top["continue"] is True
    assert {r["name"] for r in native["receivers"]} == {NULL_RECEIVER, *(f"{namespace}/{NAME}/{r}" for r in Receiver)}
    (inhibit,) = native["inhibit_rules"]
    assert f'namespace="{namespace}"' in inhibit["source_matchers"]
    assert f'namespace="{namespace}"' in inhibit["target_matchers"]


def test_native_config_does_not_depend_on_the_key_order_it_is_handed(stack):
    namespace, spec = stack

    def reversed_keys(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reversed_keys(value[key]) for key in reversed(list(value))}
        return [reversed_keys(item) for item in value] if isinstance(value, list) else value

    assert dump_yaml(native_config(reversed_keys(spec), namespace, NAME)) == \
        dump_yaml(native_config(spec, namespace, NAME))


def test_native_config_refuses_what_it_cannot_convert():
    spec = alertmanager_config_spec(AlertmanagerSettings())
    spec["receivers"].append({"name": "mail", "emailConfigs": [{"to": "ops@codai.dev"}]})
    with pytest.raises(ValueError, match="emailConfigs"):
        native_config(spec, "codai", NAME)


@pytest.mark.realtool
def test_amtool_accepts_the_configuration(native_file):
    amtool = require_tool("amtool")
    result = subprocess.run([amtool, "check-config", str(native_file)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "4 receivers" in result.stdout


def routed(amtool: str, config: Path, labels: dict[str, str]) -> list[str]:
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={config}",
                             *(f"{key}={value}" for key, value in labels.items())],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.realtool
def test_amtool_routes_each_severity_to_its_receiver(stack, native_file):
    amtool = require_tool("amtool")
    namespace, _ = stack
    alert = {"alertname": "ServiceDown", "namespace": namespace, "service": "codai", "tier": "core"}
    expected = {severity.value: f"{namespace}/{NAME}/{receiver.value}" for severity, receiver in ROUTES.items()}
    got = {severity: routed(amtool, native_file, {**alert, "severity": severity}) for severity in expected}
    assert got == {severity: [receiver] for severity, receiver in expected.items()}
    assert expected == {"critical": f"{namespace}/{NAME}/pagerduty", "warning": f"{namespace}/{NAME}/slack",
                        "info": f"{namespace}/{NAME}/digest"}
    # an unknown severity is seen by people; another namespace's alerts are not this config's business
    assert routed(amtool, native_file, {**alert, "severity": "page"}) == [f"{namespace}/{NAME}/slack"]
    assert routed(amtool, native_file, {**alert, "severity": "critical", "namespace": "elsewhere"}) == [NULL_RECEIVER]


# --- a real Alertmanager: inhibition ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def alertmanager(native_file: Path, tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager", "/usr/bin")
    url = f"http://127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [binary, f"--config.file={native_file}", f"--storage.path={tmp_path}",
         f"--web.listen-address={url.removeprefix('http://')}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.realtool
def test_alertmanager_inhibits_warnings_of_a_service_with_a_critical_alert(stack, alertmanager):
    namespace, _ = stack

    def alert(name: str, severity: Severity, service: str) -> dict[str, Any]:
        return {"labels": {"alertname": name, "severity": severity.value, "namespace": namespace,
                           "service": service, "tier": "core"}}

    sent = [alert("ServiceDown", Severity.CRITICAL, "codai"),
            alert("LatencyHigh", Severity.WARNING, "codai"),
            alert("LatencyHigh", Severity.WARNING, "logai"),
            alert("RolloutInProgress", Severity.INFO, "codai")]
    request = urllib.request.Request(f"{alertmanager}/api/v2/alerts", data=json.dumps(sent).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass
    prefix = f"{namespace}/{NAME}/"
    expected = {
        ("ServiceDown", "codai"): ("active", [prefix + "pagerduty"]),
        ("LatencyHigh", "codai"): ("suppressed", [prefix + "slack"]),  # inhibited by the critical alert
        ("LatencyHigh", "logai"): ("active", [prefix + "slack"]),  # another service: still notified
        ("RolloutInProgress", "codai"): ("active", [prefix + "digest"]),  # only warnings are silenced
    }
    # Alertmanager's inhibitor learns of a source alert from its own subscription, a moment after the POST
    # returns; until then the API reports the warning as active. Read until the state settles (bounded).
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as response:
            got = json.load(response)
        state = {(a["labels"]["alertname"], a["labels"]["service"]): (a["status"]["state"],
                                                                      [r["name"] for r in a["receivers"]])
                 for a in got}
        if state == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert state == expected
