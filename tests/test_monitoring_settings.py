"""Monitoring settings: defaults that need no stack file, and the error each bad value gets."""

from __future__ import annotations

from typing import Any

import pytest

from services.tiers import Tier
from settings import SettingsError, load_settings
from settings.monitoring import DEFAULT_LATENCY_P95_SECONDS, MonitoringSettings, duration_seconds
from tests.conftest import POSTGRES_BACKUP

ENV = {"domain": "staging.codai.dev", "release": "2024.12.1"}


def monitoring(value: dict[str, Any]) -> MonitoringSettings:
    return load_settings("staging", {"environment": ENV, "postgres": POSTGRES_BACKUP,
                                     "monitoring": value}).settings.monitoring


def problems(value: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as caught:
        load_settings("staging", {"environment": ENV, "postgres": POSTGRES_BACKUP, "monitoring": value})
    return caught.value.problems


def test_defaults_follow_the_seed():
    settings = MonitoringSettings()
    alerts = settings.alerts
    assert (alerts.error_ratio_critical, alerts.error_ratio_warning) == (0.05, 0.02)
    assert (alerts.cpu_critical, alerts.cpu_warning, alerts.memory_critical, alerts.memory_warning) == (
        0.9, 0.8, 0.9, 0.8)
    assert alerts.disk_critical == 0.9 and alerts.certificate_expiry_days == 14
    assert alerts.latency_p95_seconds == DEFAULT_LATENCY_P95_SECONDS
    assert settings.alertmanager.pagerduty.routing_key.name == "alertmanager-pagerduty"
    assert settings.runbook_url("ServiceDown") == (
        "https://github.com/codai/codai-platform/blob/main/docs/runbooks/ServiceDown.md")


def test_stack_keys_are_camel_case_and_override_single_values():
    settings = monitoring({
        "runbookBaseUrl": "https://runbooks.codai.dev/platform/",
        "alerts": {"errorRatioCritical": 0.1, "latencyP95Seconds": {"core": 0.25}, "serviceDownFor": "1m30s"},
        "alertmanager": {"slack": {"channel": "#codai-staging"}},
    })
    assert settings.alerts.error_ratio_critical == 0.1 and settings.alerts.error_ratio_warning == 0.02
    assert settings.alerts.latency_p95_seconds == {Tier.CORE: 0.25, Tier.BUSINESS: 1.0, Tier.SUPPORT: 2.0}
    assert settings.alerts.service_down_for == "1m30s"
    assert settings.alertmanager.slack.channel == "#codai-staging"
    assert settings.runbook_url("RedisDown") == "https://runbooks.codai.dev/platform/RedisDown.md"


@pytest.mark.parametrize(("text", "seconds"), [("0", 0), ("30s", 30), ("5m", 300), ("1h30m", 5400),
                                               ("1d", 86400), ("250ms", 0.25)])
def test_durations(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "30m1h", "1.5h", "-5m", "5min"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="is not a duration"):
        duration_seconds(text)


MISTAKES = [
    pytest.param({"alerts": {"errorRatioCritical": 1.5}}, "monitoring.alerts.errorRatioCritical",
                 "less than or equal to 1", id="ratio-above-one"),
    pytest.param({"alerts": {"cpuWarning": 0.95}}, "monitoring.alerts",
                 "cpuCritical (0.9) must be above cpuWarning (0.95)", id="warning-above-critical"),
    pytest.param({"alerts": {"errorRatioWarning": 0.05}}, "monitoring.alerts",
                 "errorRatioCritical (0.05) must be above errorRatioWarning (0.05)", id="warning-equal-critical"),
    pytest.param({"alerts": {"saturationFor": "15 minutes"}}, "monitoring.alerts.saturationFor",
                 "is not a duration", id="bad-duration"),
    pytest.param({"alerts": {"latencyP95Seconds": {"edge": 1}}}, "monitoring.alerts.latencyP95Seconds.edge",
                 "'core', 'business' or 'support'", id="unknown-tier"),
    pytest.param({"alerts": {"latencyP95Seconds": {"core": 0}}}, "monitoring.alerts.latencyP95Seconds.core",
                 "greater than 0", id="zero-latency"),
    pytest.param({"alerts": {"errorRatioCritcal": 0.1}}, "monitoring.alerts.errorRatioCritcal",
                 "unknown key", id="typo"),
    pytest.param({"alertmanager": {"digest": {"repeatInterval": "30m"}}}, "monitoring.alertmanager.digest",
                 "repeatInterval 30m is shorter than groupInterval 1h", id="repeat-before-group"),
    pytest.param({"alertmanager": {"pagerduty": {"groupInterval": "0"}}},
                 "monitoring.alertmanager.pagerduty.groupInterval", "longer than zero", id="zero-group-interval"),
    pytest.param({"alertmanager": {"slack": {"apiUrl": {"name": "Slack_Secret", "key": "url"}}}},
                 "monitoring.alertmanager.slack.apiUrl.name", "not a DNS label", id="bad-secret-name"),
    pytest.param({"alertmanager": {"slack": {"apiUrl": "https://hooks.slack.com/services/T0/B0/XYZ"}}},
                 "monitoring.alertmanager.slack.apiUrl", "valid dictionary", id="url-instead-of-secret"),
    pytest.param({"alertmanager": {"groupBy": ["alertname", "alertname"]}}, "monitoring.alertmanager.groupBy",
                 "distinct label names", id="repeated-group-label"),
    pytest.param({"alertmanager": {"slack": {"channel": "codai alerts"}}}, "monitoring.alertmanager.slack.channel",
                 "should match pattern", id="bad-channel"),
    pytest.param({"runbookBaseUrl": "docs/runbooks"}, "monitoring.runbookBaseUrl", "URL", id="relative-runbook-url"),
]


@pytest.mark.parametrize(("value", "key", "message"), MISTAKES)
def test_bad_values_name_the_key_and_the_fix(value, key, message):
    found = problems(value)
    assert any(path == key and message in text for path, text in found), found
