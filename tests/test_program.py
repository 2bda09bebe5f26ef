"""The program as a user meets it: stack files, bad input, new stacks, the offline render."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from settings import CONFIG_KEYS, SettingsError
from settings.loader import PROJECT
from tests.conftest import POSTGRES_BACKUP
from tools import offline, render
from tools.offline import ROOT, run_stack, stack_config


def test_errors_abort_before_the_first_resource(monkeypatch):
    registered: list[str] = []
    original = offline._RecordingMonitor.RegisterResource

    def spy(self, request):  # records every registration attempt
        registered.append(request.type)
        return original(self, request)

    monkeypatch.setattr(offline._RecordingMonitor, "RegisterResource", spy)
    config = {f"{PROJECT}:environment": json.dumps({"domain": "codai.dev", "release": "1.0"}),
              f"{PROJECT}:services": json.dumps({"wallet": {"replicas": {"min": 9, "max": 2}}})}
    with pytest.raises(SettingsError, match=r"services\.wallet\.replicas\.min"):
        run_stack("production", config=config)
    assert [t for t in registered if t != "pulumi:pulumi:Stack"] == []


def test_a_new_stack_needs_only_its_environment_and_where_postgres_backs_up(tmp_path):
    (tmp_path / "Pulumi.production-eu.yaml").write_text(yaml.safe_dump({"config": {
        f"{PROJECT}:environment": {
            "domain": "eu.codai.dev",
            "release": "2024.12.1",
            "imageRegistry": "registry.eu.codai.dev/codai",
            "quota": {"requestsCpu": "96", "requestsMemory": "192Gi"},
        },
        f"{PROJECT}:postgres": POSTGRES_BACKUP}}))
    config, secrets = stack_config("production-eu", root=tmp_path)
    run = run_stack("production-eu", config=config, secret_keys=secrets)
    assert run.outputs["urls"]["codai"] == "https://codai.eu.codai.dev"
    # production-shaped defaults (highAvailability): support 2 to 4, core 3 to 12 (production's 15 is its own)
    assert [run.get("HorizontalPodAutoscaler", name)["spec"][key] for name in ("docs", "codai")
            for key in ("minReplicas", "maxReplicas")] == [2, 4, 3, 12]
    image = run.get("Deployment", "codai")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.eu.codai.dev/codai/codai:2024.12.1"
    hard = run.get("ResourceQuota", "codai-quota")["spec"]["hard"]
    assert (hard["requests.cpu"], hard["requests.memory"], hard["limits.memory"]) == ("96", "192Gi", "256Gi")
    assert run.resource("Namespace", "codai").protect


def _keys(value: object, path: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [(f"{path}.{key}", item) for key, item in value.items()] + [
            pair for key, item in value.items() for pair in _keys(item, f"{path}.{key}")]
    return []


#: Keys whose value names a Kubernetes Secret (settings' Secret references), never holds one.
SECRET_NAME_KEYS = (".credentialsSecret", ".adminSecret.name")


def test_stack_files_hold_known_keys_and_no_plain_secrets():
    for path in Path(render.ROOT).glob("Pulumi.*.yaml"):
        document = yaml.safe_load(path.read_text())["config"]
        for key in document:
            namespace, _, name = key.partition(":")
            assert namespace in (PROJECT, "kubernetes"), f"{path.name}: {key}"
            if namespace == PROJECT:
                assert name in CONFIG_KEYS, f"{path.name}: {key}"
        for where, value in _keys(document):
            if where.endswith(SECRET_NAME_KEYS):
                continue  # the name of a Kubernetes Secret made elsewhere, not its content
            if any(word in where.lower() for word in ("password", "token", "secret", "apikey")):
                assert isinstance(value, dict) and set(value) == {"secure"}, f"{path.name}: {where} is not encrypted"


def rendered_files(folder: Path) -> dict[Path, str]:
    return {p.relative_to(folder): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_render_is_deterministic_and_redacts_secrets(tmp_path, capsys):
    assert render.main(["staging", "--out", str(tmp_path / "a")]) == 0
    # Another process with another string-hash seed: set and map orders differ, the files must not.
    subprocess.run([sys.executable, "-m", "tools.render", "staging", "--out", str(tmp_path / "b")], cwd=ROOT,
                   env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True, capture_output=True)
    first, second = rendered_files(tmp_path / "a"), rendered_files(tmp_path / "b")
    assert first == second and len(first) > 300 and Path("staging/alertmanager.yml") in first
    secret = yaml.safe_load(first[Path("staging/secret/logai-app-secrets.yaml")])
    assert set(secret["stringData"].values()) == {"<redacted>"}
    out = capsys.readouterr().out
    assert "core       3 services" in out and "support   18 services" in out and "quota" in out


def test_render_reports_a_bad_stack_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump(
        {"config": {f"{PROJECT}:environment": {"domain": "codai.dev", "release": "latest"}}}))
    monkeypatch.setattr(render, "stack_config", lambda stack: stack_config(stack, root=tmp_path))
    assert render.main(["broken", "--out", str(tmp_path / "dist")]) == 1
    assert "Pulumi.broken.yaml" in capsys.readouterr().err
    assert not (tmp_path / "dist").exists()


def test_outputs_count_services_by_tier(any_stack):
    assert any_stack.outputs["servicesByTier"] == {"core": 3, "business": 8, "support": 18}


def test_the_project_name_is_the_one_the_settings_and_tools_use():
    """Stack-file keys are `<project>:<key>`: a renamed project in Pulumi.yaml alone would orphan every key."""
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"] == PROJECT == "codai-platform"
