"""The local cluster's processes: started by us, known by their PID, stopped only while still ours."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid_file: Path) -> bool:
    """Whether the PID in ``pid_file`` is still the process we started (a PID can be reused)."""
    if not pid_file.exists():
        return False
    return is_ours(int(pid_file.read_text()), pid_file.stem)


def is_ours(pid: int, name: str) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return Path(command).name == name


def stop_pid(pid: int, name: str, grace: float = 10) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; True if the process was there and ours."""
    if not is_ours(pid, name):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: watch for it to go instead
            done = 0 if is_ours(pid, name) else pid
        if done:
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True
