"""Stack configuration: what a good config resolves to, and the error every bad one gets."""

from __future__ import annotations

from typing import Any

import pytest

from services import CATALOG, Tier
from settings import SettingsError, load_settings
from settings.pulumi_config import project_values
from settings.quantities import Cpu, Memory
from tests.conftest import POSTGRES_BACKUP

ENV = {"domain": "staging.codai.dev", "release": "2024.12.1"}


def config(**overrides: Any) -> dict[str, Any]:
    """A minimal valid stack config with ``overrides`` merged at the top level."""
    base: dict[str, Any] = {"environment": dict(ENV), "postgres": POSTGRES_BACKUP}
    for key, value in overrides.items():
        if key == "environment":
            base["environment"].update(value)
        else:
            base[key] = value
    return base


def problems(cfg: dict[str, Any], stack: str = "staging") -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as caught:
        load_settings(stack, cfg)
    assert str(caught.value).startswith(f"Pulumi.{stack}.yaml: invalid configuration")
    return caught.value.problems


# --- a good config ---------------------------------------------------------------------------


def test_minimal_config_is_production_shaped():
    platform = load_settings("prod-eu", config())
    assert len(platform.services) == 29
    assert {s.replicas_min for s in platform.in_tier(Tier.CORE)} == {3}
    assert all(s.replicas_min >= 2 for s in platform.services)
    assert platform.service("codai").image == "ghcr.io/codai/codai:2024.12.1"


def test_layers_apply_in_order_sizing_then_tier_then_service():
    platform = load_settings("staging", config(
        environment={"sizing": "minimal"},
        tiers={"business": {"replicas": {"max": 5}, "resources": {"requests": {"cpu": "200m"}}}},
        services={"wallet": {"replicas": {"min": 2}, "image": {"tag": "1.2.3"}}},
    ))
    wallet, bancai, docs = (platform.service(n) for n in ("wallet", "bancai", "docs"))
    assert (wallet.replicas_min, wallet.replicas_max) == (2, 5)
    assert (bancai.replicas_min, bancai.replicas_max) == (1, 5)
    assert wallet.cpu_request == Cpu(200) and wallet.memory_request == Memory.parse("256Mi")
    assert wallet.image.endswith("/wallet:1.2.3") and bancai.image.endswith("/bancai:2024.12.1")
    assert (docs.replicas_min, docs.replicas_max) == (1, 2)  # support untouched


def test_digest_pins_the_image_over_the_tag():
    digest = "sha256:" + "a" * 64
    platform = load_settings("staging", config(services={"x": {"image": {"tag": "9.9", "digest": digest}}}))
    assert platform.service("x").image == f"ghcr.io/codai/x@{digest}"


@pytest.mark.parametrize(("text", "millis"), [("250m", 250), ("2", 2000), ("0.5", 500), (1, 1000)])
def test_cpu_quantities(text, millis):
    assert Cpu.parse(text).millis == millis
    assert Cpu.parse(str(Cpu.parse(text))) == Cpu.parse(text)


@pytest.mark.parametrize(("text", "size"), [("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30), ("1G", 10**9)])
def test_memory_quantities(text, size):
    assert Memory.parse(text).bytes == size
    assert Memory.parse(str(Memory.parse(text))) == Memory.parse(text)


# --- bad configs: each names the key, the value and, where it helps, the fix ------------------

MISTAKES = [
    pytest.param(config(enviroment={}), "enviroment", "unknown configuration key", id="unknown-top-level-key"),
    pytest.param({"tiers": {}}, "environment", "required key is missing", id="missing-environment"),
    pytest.param(config(environment={"domain": "Not A Host"}), "environment.domain", "not a valid DNS hostname",
                 id="invalid-hostname"),
    pytest.param(config(environment={"release": "latest"}), "environment.release", "'latest' is not a pinned",
                 id="latest-tag"),
    pytest.param(config(environment={"sizing": "huge"}), "environment.sizing", "'minimal' or 'highAvailability'",
                 id="unknown-sizing-profile"),
    pytest.param(config(environment={"quota": {"requestsCpu": "500x"}}), "environment.quota.requestsCpu",
                 "'500x' is not a CPU quantity", id="cpu-500x"),
    pytest.param(config(environment={"quota": {"pods": -3}}), "environment.quota.pods", "greater than or equal to 1",
                 id="negative-pod-quota"),
    pytest.param(config(environment={"kubernetes": {"minVersion": "1.33", "maxVersion": "1.30"}}),
                 "environment.kubernetes", "newer than maxVersion", id="k8s-versions-reversed"),
    pytest.param(config(environment={"namespace": "Codai_Prod"}), "environment.namespace", "not a DNS label",
                 id="namespace-not-dns-label"),
    pytest.param(config(environment={"ingress": {"clasName": "nginx"}}), "environment.ingress.clasName",
                 "unknown key", id="misspelt-nested-key"),
    pytest.param(config(tiers={"gold": {}}), "tiers.gold", "'core', 'business' or 'support'", id="unknown-tier"),
    pytest.param(config(services={"bancia": {}}), "services.bancia", "did you mean 'bancai'", id="unknown-service"),
    pytest.param(config(services={"wallet": {"replicas": {"min": 0}}}), "services.wallet.replicas.min",
                 "greater than or equal to 1", id="zero-replicas"),
    pytest.param(config(services={"wallet": {"replicas": {"min": 6, "max": 4}}}), "services.wallet.replicas.min",
                 "replicas.min 6 is above replicas.max 4", id="min-above-max"),
    pytest.param(config(tiers={"support": {"replicas": {"min": 5}}}), "tiers.support.replicas.min",
                 "above replicas.max 4", id="tier-min-above-default-max"),
    pytest.param(config(services={"x": {"resources": {"requests": {"memory": "4Gi"}}}}),
                 "services.x.resources.requests.memory", "memory request 4Gi is above its limit 1Gi",
                 id="request-above-limit"),
    pytest.param(config(services={"x": {"resources": {"limits": {"memory": "lots"}}}}),
                 "services.x.resources.limits.memory", "'lots' is not a memory quantity", id="bad-memory"),
    pytest.param(config(services={"x": {"image": {"digest": "sha256:abc"}}}), "services.x.image.digest",
                 "not an image digest", id="bad-digest"),
    pytest.param(config(services={"x": {"env": {"log-level": "debug"}}}), "services.x.env",
                 "UPPER_SNAKE", id="bad-env-name"),
    pytest.param(config(services={"x": {"autoscaling": {"targetCpuUtilization": 150}}}),
                 "services.x.autoscaling.targetCpuUtilization", "less than or equal to 100", id="cpu-target-over-100"),
    pytest.param(config(environment={"quota": {"requestsCpu": "4"}}), "environment.quota.requestsCpu",
                 "cannot hold every service at its replicas.max", id="quota-below-max-scale"),
    pytest.param(config(monitoring={"namespace": "codai"}), "monitoring.namespace", "must differ",
                 id="monitoring-in-platform-namespace"),
    pytest.param(config(environment={"rbac": {"viewers": [{"kind": "ServiceAccount", "name": "ci"}]}}),
                 "environment.rbac.viewers[0]", "needs a namespace", id="service-account-without-namespace"),
    pytest.param({"environment": "staging.codai.dev"}, "environment", "valid dictionary",
                 id="scalar-instead-of-object"),
]


@pytest.mark.parametrize(("cfg", "path", "message"), MISTAKES)
def test_mistake_is_rejected_naming_the_key(cfg, path, message):
    found = problems(cfg)
    assert any(where == path and message in text for where, text in found), found


def test_every_problem_is_reported_at_once():
    found = problems(config(environment={"domain": "bad_host", "release": "latest"}, servces={}))
    assert {path for path, _ in found} == {"servces", "environment.domain", "environment.release"}


def test_error_text_names_the_stack_file_and_full_key():
    with pytest.raises(SettingsError) as caught:
        load_settings("production", config(environment={"quota": {"requestsCpu": "500x"}}))
    text = str(caught.value)
    assert "Pulumi.production.yaml" in text
    assert "codai-platform:environment.quota.requestsCpu: '500x' is not a CPU quantity" in text
    assert "nothing was deployed" in text


def test_catalog_has_29_services_in_three_tiers():
    assert len(CATALOG) == 29
    assert [s.name for s in CATALOG.in_tier(Tier.CORE)] == ["codai", "logai", "memorai"]
    assert len(CATALOG.in_tier(Tier.BUSINESS)) == 8
    assert len(CATALOG.in_tier(Tier.SUPPORT)) == 18
    assert "aide" in CATALOG  # the AIDE service, named in the lowercase a DNS label needs


def test_stack_config_is_decoded_one_way_for_the_program_and_the_tools():
    """Objects from their JSON, anything else as the string the engine hands over ('yes' stays 'yes'),
    other projects' keys and unset values left out."""
    assert project_values({"codai-platform:environment": '{"domain": "codai.dev", "protectStateful": false}',
                           "codai-platform:answer": "yes", "codai-platform:unset": None,
                           "kubernetes:context": "production"}) == {
        "environment": {"domain": "codai.dev", "protectStateful": False}, "answer": "yes"}
