"""The Pulumi CLI set up for the local cluster: backend, plugins and policy pack, all offline.

- The state lives in a ``file://`` backend inside the cluster's state folder, so it goes with
  the cluster; secrets are encrypted with a local passphrase.
- The plugins are the ones built by ``build.sh``, installed at the versions the SDK asks for;
  nothing is downloaded (``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION``).
- The Python language host is not served by the Go module proxy (docs/local-cluster.md): the
  program runs in-process through the Automation API, whose language runtime is the SDK's own
  (``pulumi up --client``). The policy pack is handed to the CLI as an executable that starts
  it with its own virtualenv, as the language plugin would.
- Each stack's settings are read from a copy of ``Pulumi.yaml`` and the stack file in the state
  folder: the CLI adds a passphrase salt to a stack file, which must not land in the repo.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.cluster.local_cluster import STATE, LocalCluster
from tools.cluster.toolchain import ROOT, Toolchain, require_tools, versions

#: The passphrase of the local backend. Only throw-away stacks on a loopback cluster use it.
LOCAL_PASSPHRASE = "codai-local-cluster"

#: The policy pack as an executable: the CLI starts a pack folder through the Python language
#: plugin, which is not to be had here, and starts an executable analyzer as it is.
POLICY_PACK_LAUNCHER = """#!/bin/sh
# The policy pack {pack}, started as an analyzer plugin (the engine's address is the argument).
exec {pack}/venv/bin/python -u -m pulumi.policy "$1" {pack}
"""


@dataclass(frozen=True)
class PulumiEnv:
    tools: Toolchain
    home: Path
    backend: Path
    projects: Path
    bin: Path
    cluster: LocalCluster

    @property
    def policy_pack(self) -> Path:
        return self.bin / "codai-policy-pack"

    @property
    def variables(self) -> dict[str, str]:
        return {
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "PATH": os.pathsep.join([str(self.tools.pulumi.parent), os.environ.get("PATH", "")]),
        }

    def project_dir(self, stack: str, stack_file: Path) -> Path:
        """A folder with Pulumi.yaml and the stack file as ``Pulumi.<stack>.yaml``, the salt kept."""
        folder = self.projects / stack
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
        target = folder / f"Pulumi.{stack}.yaml"
        salt = re.search(r"^encryptionsalt: .*$", target.read_text(), re.MULTILINE) if target.exists() else None
        # The source may be such a copy itself (`make down` destroys from them): one salt only.
        content = re.sub(r"^encryptionsalt: .*\n", "", stack_file.read_text(), flags=re.MULTILINE)
        target.write_text(f"{salt.group(0)}\n{content}" if salt else content)
        return folder


def pulumi_env(state: Path = STATE) -> PulumiEnv:
    """The CLI's environment for the running local cluster, with the plugins installed once."""
    tools = require_tools()
    cluster = LocalCluster(state)
    env = PulumiEnv(tools=tools, home=state / "pulumi-home", backend=state / "pulumi-state",
                    projects=state / "projects", bin=state / "bin", cluster=cluster)
    for folder in (env.home, env.backend, env.projects, env.bin):
        folder.mkdir(parents=True, exist_ok=True)
    _write_executable(env.policy_pack, POLICY_PACK_LAUNCHER.format(pack=ROOT / "policy"))
    _install_plugins(env)
    return env


def _install_plugins(env: PulumiEnv) -> None:
    pinned = versions()
    random_plugin = env.bin / "pulumi-resource-random"
    script = ROOT / "tools" / "cluster" / "random_provider.py"
    _write_executable(random_plugin, f"""#!/bin/sh
exec {sys.executable} {script} --plugin-version={pinned['RANDOM_PROVIDER_PLUGIN']} "$@"
""")
    wanted = [("kubernetes", pinned["KUBERNETES_PROVIDER_PLUGIN"], env.tools.kubernetes_provider),
              ("random", pinned["RANDOM_PROVIDER_PLUGIN"], random_plugin)]
    for name, version, binary in wanted:
        if (env.home / "plugins" / f"resource-{name}-v{version}").is_dir():
            continue
        subprocess.run([str(env.tools.pulumi), "plugin", "install", "resource", name, version, "--file", str(binary)],
                       check=True, env={**os.environ, **env.variables}, capture_output=True)


def _write_executable(path: Path, content: str) -> None:
    if not path.exists() or path.read_text() != content:
        path.write_text(content)
        path.chmod(0o755)
