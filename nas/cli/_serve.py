"""Run a server (the MLflow UI, optuna-dashboard) as a child of the CLI, and stop it with everything it started.

The child runs in its own session, so that a terminal's Ctrl-C reaches the CLI alone: the CLI then stops the
child's whole process group (SIGTERM, then SIGKILL after a grace period) and prints one line. SIGTERM is handled
the same way, so that a service manager or ``kill`` leaves no orphaned server behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

from nas.errors import NasError

__all__ = ["group_gone", "port_in_use", "run_server", "stop_process_group"]

GRACE_S = 2.0  # then SIGKILL: the MLflow server leaves a process that ignores SIGTERM for seconds


def port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` cannot be bound now (another server holds it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def group_gone(group: int) -> bool:
    """Whether no process of ``group`` is still running. A zombie (dead, waiting for init to reap it, which can take
    seconds once its parent has died) does not count."""
    proc = Path("/proc")
    if proc.is_dir():
        for d in proc.iterdir():
            if not d.name.isdigit():
                continue
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                return False
        return True
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def stop_process_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the process group that ``proc`` leads (started with ``start_new_session=True``), SIGKILL to
    whatever is left after ``grace_s``; returns once the group is empty (the leader's own children are reaped by
    init after it, not at once). Nothing outside that group is touched."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace_s
        while not group_gone(proc.pid) and time.monotonic() < deadline:
            proc.poll()  # reap the leader so that it does not count as alive
            time.sleep(0.05)
        if group_gone(proc.pid):
            break
    proc.wait()


def run_server(cmd: Sequence[str], what: str, host: str, port: int, say: Callable[[str], None], banner: str) -> int:
    """Run ``cmd`` (a server of ``what`` that will listen on ``host:port``) until it ends or the CLI gets SIGINT or
    SIGTERM; returns the exit status for the CLI (0 when stopped by a signal). ``banner`` is said once the port is
    known to be free (never an address that cannot work)."""
    if port_in_use(host, port):
        raise NasError(f"cannot start {what}: port {port} on {host} is already in use; choose another with --port")
    say(banner)
    stop: list[int] = []

    def on_signal(signum, _frame) -> None:
        stop.append(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        env = dict(os.environ)
        if not os.environ.get("NAS_NATIVE_LOGS"):  # the servers' own deprecation notices (starlette) are not the user's
            env.setdefault("PYTHONWARNINGS",
                           "ignore::DeprecationWarning,ignore:starlette.middleware.wsgi is deprecated")
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        try:
            while not stop and proc.poll() is None:
                time.sleep(0.1)
        finally:
            stop_process_group(proc, GRACE_S)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if stop:
        say(f"{what} stopped ({signal.Signals(stop[0]).name})")
        return 0
    if proc.returncode:
        raise NasError(f"{what} exited with status {proc.returncode} (its messages are above)")
    return 0
