"""Where the built tools are: the versions in ``versions.sh`` and the folders ``build.sh`` fills.

``build.sh --paths`` is the one place that names a tool's folder; this module asks it, so the
shell and Python sides cannot disagree.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = HERE / "build.sh"


@functools.cache
def versions() -> dict[str, str]:
    """``NAME=value`` lines of versions.sh."""
    pairs = re.findall(r"^([A-Z_]+)=(\S+)$", (HERE / "versions.sh").read_text(), flags=re.MULTILINE)
    return dict(pairs)


@dataclass(frozen=True)
class Toolchain:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    kwok_stages: Path
    kwok_storage_class: Path
    pulumi: Path
    kubernetes_provider: Path

    def missing(self, *needed: str) -> list[Path]:
        """The paths of ``needed`` tools (all without names) that are not built."""
        paths = [getattr(self, name) for name in needed] if needed else list(vars(self).values())
        return [path for path in paths if not path.exists()]


class ToolsMissingError(RuntimeError):
    """The tools are not built: ``make tools`` (or ``tools/cluster/build.sh``) builds them."""


@functools.cache
def toolchain() -> Toolchain:
    out = subprocess.run([str(BUILD), "--paths"], check=True, capture_output=True, text=True).stdout
    dirs = {step: Path(folder) for step, folder in (line.split("=", 1) for line in out.split())}
    kube, kwok = dirs["kube"] / "bin", dirs["kwok"]
    return Toolchain(
        etcd=dirs["etcd"] / "bin" / "etcd",
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        kubectl=kube / "kubectl",
        kwok=kwok / "bin" / "kwok",
        kwok_stages=kwok / "stages",
        kwok_storage_class=kwok / "storage-class.yaml",
        pulumi=dirs["pulumi"] / "bin" / "pulumi",
        kubernetes_provider=dirs["kubernetes_provider"] / "bin" / "pulumi-resource-kubernetes",
    )


#: What the local cluster itself runs.
CLUSTER_TOOLS = ("etcd", "kube_apiserver", "kube_controller_manager", "kube_scheduler", "kubectl", "kwok")


def require_tools(*needed: str) -> Toolchain:
    tools = toolchain()
    if missing := tools.missing(*needed):
        raise ToolsMissingError(
            f"{len(missing)} tool(s) not built, e.g. {missing[0]}: run `make tools` (tools/cluster/build.sh)"
        )
    return tools
