"""The stack settings handed to the CLI: copies that keep the passphrase salt, once."""

from __future__ import annotations

from pathlib import Path

from tools.cluster.pulumi_env import PulumiEnv


def test_a_copied_stack_file_keeps_its_salt_once_whatever_it_is_copied_from(tmp_path: Path):
    env = PulumiEnv(tools=None, home=tmp_path, backend=tmp_path, projects=tmp_path / "projects",  # type: ignore[arg-type]
                    bin=tmp_path, cluster=None)  # type: ignore[arg-type]
    source = tmp_path / "Pulumi.s.yaml"
    source.write_text("config:\n  codai-platform:environment: {release: '1'}\n")
    copy = env.project_dir("s", source) / "Pulumi.s.yaml"
    copy.write_text("encryptionsalt: v1:abc\n" + copy.read_text())  # what `pulumi stack init` does
    env.project_dir("s", copy)  # `make down` destroys from the copy itself
    env.project_dir("s", source)  # the next `up` from the repository's file
    assert copy.read_text() == "encryptionsalt: v1:abc\nconfig:\n  codai-platform:environment: {release: '1'}\n"
    assert (copy.parent / "Pulumi.yaml").is_file()
