"""Servers on a study (the small real studies themselves are tests/conftest.py's, shared with the benchmark tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

def group_empties(group: int, timeout_s: float = 10.0) -> bool:
    """Whether process group ``group`` has no process left within ``timeout_s`` (its zombies are reaped by init,
    which can take a few seconds once their parent is gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def serve(command: str, folder, probe: str, what: str, stop_with: int = signal.SIGTERM):
    """Run ``nas COMMAND FOLDER --port P`` and yield (port, (status, body) of its first answer at ``probe``).

    On leaving, ``stop_with`` goes to the ``nas`` process alone, as ``kill`` or a service manager sends it: it must
    exit within 5 s, print one line saying the server stopped, and leave nothing of its process group behind (the
    server it started included; SIGTERM used to leave the MLflow server orphaned and still serving)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "nas", command, str(folder), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    stopped = False
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as r:
                    first = r.status, r.read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, f"{what} did not come up"
                time.sleep(0.5)
        yield port, first
        t0 = time.monotonic()
        proc.send_signal(stop_with)
        err = proc.communicate(timeout=30)[1].decode()
        took = time.monotonic() - t0
        stopped = True
        assert took < 5.0 and proc.returncode == 0, (took, proc.returncode, err[-2000:])
        assert err.count("stopped") == 1 and "Traceback" not in err, err[-2000:]
        assert group_empties(proc.pid), "a process of the server's group is still there"  # the server included
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2)
    finally:
        if not stopped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # this test's own group only
            proc.wait(timeout=30)
