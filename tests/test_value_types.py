"""The small value types of the settings (settings/base.py, settings/quantities.py), at their edges.

Each bound is tried on both sides (63 and 64 characters, 253 and 254...), and each message is
checked whole: these are what a user reads when a stack file is refused.
"""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from settings.base import (
    DnsLabel,
    Hostname,
    ImageTag,
    LabelKey,
    LabelSelector,
    PositiveDuration,
    checked,
    dns_label,
    duration_seconds,
)
from settings.data_values import Host
from settings.quantities import Cpu, Memory
from settings.workload import Resources


def refusal(kind: object, value: object) -> str:
    """The message a value of ``kind`` is refused with."""
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(kind).validate_python(value)
    [error] = caught.value.errors(include_url=False)
    return str(error["msg"]).removeprefix("Value error, ")


def accepts(kind: object, value: object) -> bool:
    return bool(TypeAdapter(kind).validate_python(value) == value)


def test_a_dns_label_has_at_most_63_characters():
    assert accepts(DnsLabel, "a" * 63)
    assert refusal(DnsLabel, "a" * 64) == (
        f"{'a' * 64!r} is not a DNS label (lowercase a-z, 0-9 and '-', at most 63 characters)")


def test_a_validator_reused_outside_a_model_names_what_it_refuses():
    """The CloudNativePG builders call the settings' validators through ``checked``: same rule, same wording."""
    assert checked("cluster", dns_label, "postgres") == "postgres"
    with pytest.raises(ValueError, match=r"^cluster 'Postgres' ") as refused:
        checked("cluster", dns_label, "Postgres")
    assert str(refused.value) == (
        "cluster 'Postgres' is not a DNS label (lowercase a-z, 0-9 and '-', at most 63 characters)")


def test_a_hostname_has_two_labels_or_more_of_63_characters_and_253_in_all():
    assert accepts(Hostname, "codai.dev")
    assert accepts(Hostname, f"{'a' * 63}.dev")
    longest = ".".join(["a" * 61] * 4)  # 247 characters
    assert accepts(Hostname, f"{longest}.abcde") and len(f"{longest}.abcde") == 253
    for bad in ("codai", f"{'a' * 64}.dev", f"{longest}.abcdef"):
        assert refusal(Hostname, bad) == (
            f"{bad!r} is not a valid DNS hostname such as 'staging.codai.dev' (lowercase, dotted)")


def test_a_data_server_host_may_be_one_label_a_dotted_name_or_an_address():
    """A managed server's host: a Service's own name in the namespace is one label; a domain needs no dot."""
    for host in ("postgres-primary", "db.internal.example.com", "10.0.4.7", "fd00::7"):
        assert accepts(Host, host)
    for bad in ("Postgres", "db..example.com", f"{'a' * 64}.example.com", "db_primary"):
        assert refusal(Host, bad) == f"{bad!r} is neither a lowercase DNS name nor an IP address"


def test_an_image_tag_is_refused_with_its_rule_and_latest_with_a_hint():
    assert accepts(ImageTag, "2024.12.1")
    assert refusal(ImageTag, "-rc1") == ("'-rc1' is not a valid image tag (letters, digits, '_', '.', '-', not "
                                         "starting with '.' or '-', at most 128 characters)")
    assert refusal(ImageTag, "latest") == "'latest' is not a pinned version; use a release tag such as '2024.12.1'"


def test_a_label_key_has_a_dns_prefix_of_at_most_253_characters():
    prefix = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters
    assert accepts(LabelKey, f"{prefix}/name") and accepts(LabelKey, "name")
    message = ("{!r} is not a Kubernetes label key such as 'app.kubernetes.io/name' (an optional DNS prefix and "
               "'/', then at most 63 letters, digits, '-', '_', '.')")
    for bad in (f"{prefix}a/name", "Example.com/name", "example.com/", "-name"):
        assert refusal(LabelKey, bad) == message.format(bad)


def test_a_label_selector_is_never_empty_and_holds_label_values():
    assert accepts(LabelSelector, {"app.kubernetes.io/name": "prometheus", "tier": ""})
    assert refusal(LabelSelector, {}) == "needs at least one label: an empty selector matches everything"
    assert refusal(LabelSelector, {"release": "-x"}) == (
        "'-x' (of 'release') is not a label value (at most 63 letters, digits, '-', '_', '.', starting and ending "
        "with a letter or digit)")


def test_durations_are_prometheus_durations_and_a_positive_one_may_be_a_second():
    assert duration_seconds("1h30m") == 5400 and duration_seconds("0") == 0 and duration_seconds("250ms") == 0.25
    assert accepts(PositiveDuration, "1s")
    assert refusal(PositiveDuration, "0s") == "'0s' must be longer than zero"
    with pytest.raises(ValueError, match=re.escape(
            "'5 minutes' is not a duration such as '30s', '5m' or '1h30m' (units y w d h m s ms, largest first)")):
        duration_seconds("5 minutes")


def test_the_smallest_quantities_are_one_millicore_and_one_byte():
    assert Cpu.parse("1m") == Cpu(1) and Memory.parse("1") == Memory(1)
    assert refusal(Cpu, "0") == "'0' must be a positive whole number of millicores"
    assert refusal(Cpu, "0.0005") == "'0.0005' must be a positive whole number of millicores"
    assert refusal(Memory, "0Mi") == "'0Mi' must be a positive whole number of bytes"


def test_quantities_refuse_what_is_not_a_quantity_by_type():
    assert refusal(Memory, True) == "memory must be a quantity such as '512Mi' or '2Gi', got True"
    assert refusal(Memory, 1.5) == "memory must be a quantity such as '512Mi' or '2Gi', got 1.5"
    assert refusal(Cpu, None) == "CPU must be a quantity such as '250m' or '2', got None"


def test_quantities_load_from_text_and_dump_as_canonical_text():
    resources = Resources.model_validate({"requests": {"cpu": "0.25", "memory": "1024Mi"}})
    assert resources.requests.cpu == Cpu(250)
    assert resources.model_dump(mode="json", by_alias=True) == {
        "requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": None, "memory": None}}
