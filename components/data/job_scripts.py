"""The shell scripts of the data tier's jobs, shipped to the cluster in a ConfigMap.

They are files (``scripts/*.sh``, POSIX sh) so that the tests run them unchanged against real
servers: the backup a test restores is taken by the CronJob's own script.
"""

from __future__ import annotations

from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
#: Where the scripts ConfigMap is mounted in every job pod.
MOUNT_PATH = "/scripts"


def scripts(*names: str) -> dict[str, str]:
    """``name -> text`` of the named scripts plus ``common.sh``, which each of them sources."""
    return {name: (SCRIPTS_DIR / name).read_text() for name in sorted({"common.sh", *names})}


def command(name: str, *args: str) -> list[str]:
    """A container command running one of the scripts (with ``sh``: ConfigMap files are not executable)."""
    return ["sh", f"{MOUNT_PATH}/{name}", *args]
